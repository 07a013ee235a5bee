"""The API's `timeout` and `queue_ttl` (issue 29): accepted as seconds or durations, shown
in the build's options with who set them, a timeout past MACHINE_MAX_TIME refused naming
both, bad values refused naming the field, and a build that waited past its TTL shown as
Quay's `expired`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client

from slipway.manager.queue_expiry import QueueExpiry

BUILDS = "/api/v1/repository/acme/web/build/"
ARCHIVE = "https://example.com/context.tar.gz"
CONFIG = {
    "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [{"EXECUTOR": "local"}],
                                    "MACHINE_MAX_TIME": 7200}],
    "BUILD_TIMEOUTS": {"DEFAULT": "1h", "NAMESPACES": {"team": 900}},
    "QUEUE_TTL": {"NAMESPACES": {"acme": "10m"}},
}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, **CONFIG) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def start(c: httpx.AsyncClient, path: str = BUILDS, **body: Any) -> dict[str, Any]:
    r = await c.post(path, json={"archive_url": ARCHIVE, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def rebuild(c: httpx.AsyncClient, build_id: str, **body: Any) -> dict[str, Any]:
    r = await c.post(f"{BUILDS}{build_id}/rebuild", json=body or None)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_limits_given_with_the_build_are_shown_as_set_at_submission(
    admin: httpx.AsyncClient,
) -> None:
    build = await start(admin, timeout="20m", queue_ttl=90)
    assert build["options"]["timeout"] == {"seconds": 1200, "set_by": "submission"}
    assert build["options"]["queue_ttl"] == {"seconds": 90, "set_by": "submission"}
    assert (await start(admin, timeout="1h30m"))["options"]["timeout"]["seconds"] == 5400


async def test_configured_limits_apply_by_namespace(admin: httpx.AsyncClient) -> None:
    acme = await start(admin)
    assert acme["options"]["timeout"] == {"seconds": 3600, "set_by": "BUILD_TIMEOUTS.DEFAULT"}
    assert acme["options"]["queue_ttl"] == {"seconds": 600,
                                            "set_by": "QUEUE_TTL.NAMESPACES.acme"}
    team = await start(admin, "/api/v1/repository/team/web/build/")
    assert team["options"]["timeout"] == {"seconds": 900,
                                          "set_by": "BUILD_TIMEOUTS.NAMESPACES.team"}
    assert "queue_ttl" not in team["options"]  # no DEFAULT: no limit


async def test_a_timeout_past_machine_max_time_is_refused_naming_both(
    admin: httpx.AsyncClient,
) -> None:
    r = await admin.post(BUILDS, json={"archive_url": ARCHIVE, "timeout": "3h"})
    assert r.status_code == 400, r.text
    assert r.json()["error_message"] == (
        "timeout: 3h is longer than this server lets a build run (MACHINE_MAX_TIME, 2h); "
        "ask for 2h or less")
    assert (await admin.get(BUILDS)).json()["builds"] == []  # nothing stored
    assert (await start(admin, timeout=7200))["options"]["timeout"]["seconds"] == 7200


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"timeout": "20x"}, "timeout", "'20x' is not a duration; write 90s, 20m or 1h30m"),
        ({"timeout": 0}, "timeout", "no time at all"),
        ({"timeout": -5}, "timeout", "no time at all"),
        ({"timeout": True}, "timeout", "not a duration"),
        ({"timeout": 1.5}, "timeout", "not a duration"),
        ({"queue_ttl": "soon"}, "queue_ttl", "not a duration"),
    ],
)
async def test_bad_limits_are_400_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    r = await admin.post(BUILDS, json={"archive_url": ARCHIVE, **body})
    assert r.status_code == 400, r.text
    message = r.json()["error_message"]
    assert message.startswith(field) and words in message, message
    assert (await admin.get(BUILDS)).json()["builds"] == []


async def test_a_rebuild_keeps_given_limits_rereads_configured_ones_and_takes_new_ones(
    admin: httpx.AsyncClient,
) -> None:
    given = await start(admin, timeout="20m")
    again = await rebuild(admin, given["id"])
    assert again["options"]["timeout"] == {"seconds": 1200, "set_by": "submission"}
    changed = await rebuild(admin, given["id"], timeout=60, queue_ttl="5m")
    assert changed["options"]["timeout"] == {"seconds": 60, "set_by": "submission"}
    assert changed["options"]["queue_ttl"] == {"seconds": 300, "set_by": "submission"}
    configured = await start(admin)
    plain = await rebuild(admin, configured["id"])
    assert plain["options"]["timeout"]["set_by"] == "BUILD_TIMEOUTS.DEFAULT"
    r = await admin.post(f"{BUILDS}{given['id']}/rebuild", json={"timeout": "3h"})
    assert r.status_code == 400 and "MACHINE_MAX_TIME" in r.json()["error_message"]
    r = await admin.post(f"{BUILDS}{given['id']}/rebuild", json={"timeout": "x"})
    assert r.status_code == 400 and r.json()["error_message"].startswith("timeout")


async def test_a_build_past_its_queue_ttl_reads_expired_with_the_reason(
    env: ApiEnv, admin: httpx.AsyncClient,
) -> None:
    build = await start(admin)
    assert await QueueExpiry(env.store).look(time.time() + 601) == 1
    shown = (await admin.get(f"{BUILDS}{build['id']}")).json()
    expected = ("the build waited 10m in the queue (QUEUE_TTL.NAMESPACES.acme) without "
                "starting; submit it again or raise QUEUE_TTL.NAMESPACES.acme")
    assert (shown["phase"], shown["error"]) == ("expired", expected)
    assert shown["attempts"] == [] and shown["retries_remaining"] == 0
    logs = (await admin.get(f"{BUILDS}{build['id']}/logs")).json()["logs"]
    assert [e["message"] for e in logs if e.get("type") == "error"] == [expected]
    listed = (await admin.get(BUILDS, params={"phase": "expired"})).json()["builds"]
    assert [b["id"] for b in listed] == [build["id"]]
