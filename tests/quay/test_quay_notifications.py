"""Build notifications as Quay spawns them: one item in Quay's notification queue per
repository notification for the event, with Quay's queue name, body and event data."""

from __future__ import annotations

import json

import pytest
from support.postgres_server import postgres_available
from support.quay_db import QuayDatabase

from slipway.quay.builds import QuayBuilds
from slipway.quay.notifications import QuayNotifications, Site
from slipway.quay.queue import QuayQueue
from slipway.store.database import Database

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")

SITE = Site(scheme="https", server_hostname="quay.example.test")


async def test_one_queue_item_per_matching_notification(quay: QuayDatabase, db: Database) -> None:
    repo = quay.repository("acme", "app")
    hooks = {quay.notification(repo, "build_start"),
             quay.notification(repo, "build_start", "slack")}
    quay.notification(repo, "build_success")
    other = quay.repository("acme", "other")
    quay.notification(other, "build_start")
    trigger_id, trigger_uuid = quay.trigger(repo, service="gitlab")
    started = quay.start_build("acme", "app", tags=["v1"], trigger_id=trigger_id,
                               trigger_metadata={"commit": "abc1234", "git_url": "g"},
                               display_name="abc1234")
    build = await QuayBuilds(db).get(started.uuid)
    assert build is not None

    ids = await QuayNotifications(db, SITE).send_for_build(build, "build_start")

    rows = quay.queue_rows("notification/%")
    assert sorted(r["id"] for r in rows) == sorted(ids) and len(ids) == 2
    for row in rows:
        assert row["queue_name"] == f"notification/acme/app/build_start/build/{started.uuid}/"
        assert row["retries_remaining"] == 5 and row["available"] is True
        assert row["processing_expires"] is None
    bodies = [json.loads(r["body"]) for r in rows]
    assert {b["notification_uuid"] for b in bodies} == hooks
    body = bodies[0]
    assert list(body) == ["notification_uuid", "event_data", "performer_data"]
    assert body["performer_data"] == {}
    assert body["event_data"] == {
        "repository": "acme/app",
        "namespace": "acme",
        "name": "app",
        "docker_url": "quay.example.test/acme/app",
        "homepage": f"https://quay.example.test/repository/acme/app/build/{started.uuid}",
        "build_id": started.uuid,
        "build_name": "abc1234",
        "docker_tags": ["v1"],
        "trigger_id": trigger_uuid,
        "trigger_kind": "gitlab",
        "trigger_metadata": {"commit": "abc1234", "git_url": "g"},
    }
    # Quay's notification worker takes them, the build queue does not
    assert await QuayQueue(db).claim(limit=10, lease_seconds=60) != []
    assert len(quay.queue_rows("notification/%")) == 2


async def test_a_failure_carries_its_message_and_no_notification_means_no_item(
    quay: QuayDatabase, db: Database
) -> None:
    repo = quay.repository("acme", "app")
    quay.notification(repo, "build_failure", "email")
    started = quay.start_build("acme", "app")
    build = await QuayBuilds(db).get(started.uuid)
    assert build is not None
    notifications = QuayNotifications(db, SITE)

    assert await notifications.send_for_build(build, "build_success") == []
    (item_id,) = await notifications.send_for_build(
        build, "build_failure", error_message="RUN make: exit status 2")
    row = quay.queue_row(item_id)
    assert row is not None
    event_data = json.loads(row["body"])["event_data"]
    assert event_data["error_message"] == "RUN make: exit status 2"
    assert event_data["trigger_id"] is None and event_data["trigger_kind"] is None
    assert event_data["docker_tags"] == ["latest"]
    with pytest.raises(ValueError, match="not a build event"):
        await notifications.send_for_build(build, "repo_push")
