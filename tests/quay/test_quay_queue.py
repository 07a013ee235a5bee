"""Quay's build queue as Quay's web app fills it (support/quay_db.py start_build), with
Quay's WorkQueue semantics where they are Quay's own: the row a claim leaves (state_id,
naive UTC lease), `incomplete`'s and `extend_processing`'s return values and Quay's
defaults (300 s, 20 s minimum extension), bodies that are not builds, other queues in the
table, num_alive_jobs, and a row that may vanish at any time (Quay's cancel).

The rules slipway's own tables keep too (leases and their expiry, retries, one build per
repository, NAMESPACE_LIMITS, managers claiming at once) are tested once for every
backend, through the store's protocol: tests/store/test_queue_contract.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from support.postgres_server import postgres_available
from support.quay_db import QuayDatabase

from slipway.quay.queue import QuayQueue
from slipway.store.database import Database

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def seconds_from_now(value: dt.datetime | None) -> float:
    assert value is not None
    return (value - utcnow()).total_seconds()


async def test_a_claim_takes_the_item_with_a_lease_a_retry_and_a_new_state_id(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app", pull_robot=("acme+puller", "robot-token"))
    before = quay.queue_row(started.queue_id)
    assert before is not None

    (item,) = await QuayQueue(db).claim(limit=10, lease_seconds=530)

    assert (item.id, item.build_id) == (started.queue_id, started.uuid)
    assert (item.namespace, item.repository) == ("acme", "acme/app")
    assert item.queue_name == "dockerfilebuild/acme/app/"
    assert item.retries_remaining == 2  # after this attempt, as Quay's get returns it
    assert item.pull_credentials == {"username": "acme+puller", "password": "robot-token",
                                     "registry": "http://quay.example.test/v1/"}
    assert "robot-token" not in repr(item)
    row = quay.queue_row(started.queue_id)
    assert row is not None and row["available"] is False and row["retries_remaining"] == 2
    assert row["state_id"] != before["state_id"] and row["state_id"] == item.state_id
    assert 520 < seconds_from_now(row["processing_expires"]) <= 530  # naive UTC, as Quay's
    assert await QuayQueue(db).claim(limit=10, lease_seconds=530) == []
    assert await QuayQueue(db).complete(None, item.id) is True  # it was there
    assert quay.queue_row(started.queue_id) is None


async def test_an_item_waits_for_available_after(quay: QuayDatabase, db: Database) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    later = utcnow() + dt.timedelta(seconds=120)
    quay.execute("UPDATE queueitem SET available_after = %s WHERE id = %s", later,
                 started.queue_id)
    queue = QuayQueue(db)
    assert await queue.claim(limit=1, lease_seconds=60) == []
    expected = later.replace(tzinfo=dt.UTC).timestamp()
    assert await queue.next_available_at(after=expected - 200) == pytest.approx(expected)
    assert await queue.next_available_at(after=expected + 1) is None


async def test_incomplete_puts_the_item_back_with_or_without_its_retry(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    queue = QuayQueue(db)
    (item,) = await queue.claim(limit=1, lease_seconds=60)
    lease = quay.queue_row(item.id)
    assert lease is not None

    assert await queue.incomplete(None, item.id, restore_retry=True, retry_after=30)
    row = quay.queue_row(item.id)
    assert row is not None and row["available"] is True and row["retries_remaining"] == 3
    assert 25 < seconds_from_now(row["available_after"]) <= 30
    assert row["processing_expires"] == lease["processing_expires"]  # left as it was
    assert row["state_id"] != lease["state_id"]

    quay.execute("UPDATE queueitem SET available_after = %s WHERE id = %s", utcnow(),
                 started.queue_id)
    (again,) = await queue.claim(limit=1, lease_seconds=60)
    assert again.retries_remaining == 2
    assert await queue.incomplete(None, item.id, restore_retry=False) is True
    row = quay.queue_row(item.id)
    assert row is not None and row["retries_remaining"] == 2
    assert 295 < seconds_from_now(row["available_after"]) <= 300  # Quay's default


async def test_incomplete_without_retries_left_says_so(quay: QuayDatabase, db: Database) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    quay.execute("UPDATE queueitem SET retries_remaining = 1 WHERE id = %s", started.queue_id)
    queue = QuayQueue(db)
    (item,) = await queue.claim(limit=1, lease_seconds=60)
    assert item.retries_remaining == 0
    assert await queue.incomplete(None, item.id) is False
    assert await queue.has_retries_remaining(item.id) is False


async def test_extend_processing_moves_the_lease_only_by_more_than_the_minimum(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    quay.start_build("acme", "app")
    queue = QuayQueue(db)
    (item,) = await queue.claim(limit=1, lease_seconds=100)
    before = quay.queue_row(item.id)
    assert before is not None

    assert await queue.extend_processing(item.id, 110) is False  # 10 s < 20 s minimum
    assert quay.queue_row(item.id) == before
    assert await queue.extend_processing(item.id, 300, minimum_extension=60) is True
    row = quay.queue_row(item.id)
    assert row is not None and 290 < seconds_from_now(row["processing_expires"]) <= 300
    assert row["state_id"] != before["state_id"]
    new_body = json.dumps({"build_uuid": item.build_id, "pull_credentials": None, "x": 1})
    assert await queue.extend_processing(item.id, 300, updated_body=new_body) is True
    row = quay.queue_row(item.id)
    assert row is not None and row["body"] == new_body


async def test_many_leases_at_once_say_which_items_still_exist(
    quay: QuayDatabase, db: Database
) -> None:
    for repo in ("a", "b", "c"):
        quay.repository("acme", repo)
    cancelled = quay.start_build("acme", "a")
    for repo in ("b", "c"):
        quay.start_build("acme", repo)
    queue = QuayQueue(db)
    items = await queue.claim(limit=3, lease_seconds=60)
    short = items[2]
    quay.execute("UPDATE queueitem SET processing_expires = %s WHERE id = %s",
                 utcnow() + dt.timedelta(seconds=295), short.id)
    before_short = quay.queue_row(short.id)
    assert quay.cancel_build(cancelled.uuid)  # Quay's cancel deletes the row

    alive = await queue.extend_processing_many(
        [(items[0].id, 300), (items[1].id, 300), (short.id, 300)], minimum_extension=60)

    assert alive == [False, True, True]
    row = quay.queue_row(items[1].id)
    assert row is not None and 290 < seconds_from_now(row["processing_expires"]) <= 300
    assert quay.queue_row(short.id) == before_short  # moved by less than the minimum


async def test_every_operation_tolerates_the_row_being_gone(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    queue = QuayQueue(db)
    (item,) = await queue.claim(limit=1, lease_seconds=60)
    quay.execute("DELETE FROM queueitem WHERE id = %s", started.queue_id)
    assert await queue.incomplete(None, item.id, restore_retry=True) is False
    assert await queue.extend_processing(item.id, 600) is False
    assert await queue.extend_processing_many([(item.id, 600)]) == [False]
    assert await queue.complete(None, item.id) is False
    assert await queue.get(item.id) is None


async def test_an_item_that_is_not_a_build_goes_back_without_its_retry(
    quay: QuayDatabase, db: Database
) -> None:
    queue = QuayQueue(db)
    item_id = await queue.put(None, ["acme", "app"], "not json", retries_remaining=3)
    assert await queue.claim(limit=1, lease_seconds=60) == []
    row = quay.queue_row(item_id)
    assert row is not None and row["available"] is True and row["retries_remaining"] == 2
    assert 295 < seconds_from_now(row["available_after"]) <= 300


async def test_other_queues_in_the_table_are_left_alone(quay: QuayDatabase, db: Database) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    notification = QuayQueue(db, "notification")
    other = await notification.put(None, ["acme", "app", "build_start", "build", "x"], "{}")
    assert [i.id for i in await QuayQueue(db).claim(limit=5, lease_seconds=60)] == [
        started.queue_id]
    row = quay.queue_row(other)
    assert row is not None and row["available"] is True and row["retries_remaining"] == 5
    assert row["queue_name"] == "notification/acme/app/build_start/build/x/"


async def test_alive_items_of_a_namespace_are_counted_as_quay_counts_them(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "a/b")  # Quay's extended repository names hold slashes
    quay.repository("acme", "c")
    quay.start_build("acme", "a/b")
    dead = quay.start_build("acme", "c")
    quay.execute("UPDATE queueitem SET retries_remaining = 0 WHERE id = %s", dead.queue_id)
    queue = QuayQueue(db)
    assert await queue.num_alive_jobs("acme") == 1
    (item,) = await queue.claim(limit=5, lease_seconds=60)
    assert (item.namespace, item.repository) == ("acme", "acme/a/b")
