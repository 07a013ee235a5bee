"""Hot-path writes that arrive together share one PostgreSQL transaction; a write that
fails there runs again alone, so it fails alone and the others still commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from support.enqueue import record_and_queue
from support.postgres_server import PostgresServer, postgres_available

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry, NewBuild
from slipway.store.shared_transactions import SharedConnection, SharedTransactions

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")


@pytest.fixture
async def store(postgres: PostgresServer) -> AsyncIterator[SqlStore]:
    s = await SqlStore(postgres.create_database()).open()
    yield s
    await s.close()


async def _builds(store: SqlStore, count: int) -> list[str]:
    return [(await record_and_queue(store, NewBuild(
        namespace="ns", repository=f"repo{i}", tags=["latest"], registry="r:5000"))).id
        for i in range(count)]


def _schedule(store: SqlStore, build_id: str, queue_id: int | None = None):  # type: ignore[no-untyped-def]
    """A write like the scheduler's: phase moved, two log lines, the queue lease pushed out;
    it answers its transaction's id."""
    async def write(conn: SharedConnection) -> int:
        moved = await store.builds.move_phase(
            conn, build_id, Phase.BUILD_SCHEDULED, job_id=str(uuid.uuid4()),
            log=[LogEntry(f"first of {build_id}"), LogEntry(f"second of {build_id}")])
        assert moved
        if queue_id is not None:
            conn.extend_lease(queue_id, 60)
        return int(await conn.scalar(text("SELECT txid_current()")))
    return write


async def test_writes_that_arrive_together_commit_in_one_transaction(store: SqlStore) -> None:
    shared = SharedTransactions(store.db, store.queue)
    build_ids = await _builds(store, 20)
    items = await store.queue.claim("m1", limit=20, lease_seconds=0.01)
    queue_ids = {i.build_id: i.id for i in items}
    try:
        txids = await asyncio.gather(
            *(shared.run(_schedule(store, b, queue_ids[b])) for b in build_ids))
    finally:
        await shared.close()
    assert len(set(txids)) == 1
    records = await store.builds.get_each(build_ids)
    assert all(r is not None and r.phase is Phase.BUILD_SCHEDULED for r in records)
    # each build's log lines, written together with the others', under its own numbers
    for build_id in build_ids:
        total, entries = await store.logs.read(build_id)
        assert total == 2
        assert [e.message for e in entries] == [f"first of {build_id}", f"second of {build_id}"]
    # and every lease was pushed out: none of the items can be claimed again yet
    await asyncio.sleep(0.05)
    assert await store.queue.claim("m2", limit=20, lease_seconds=60) == []


async def test_a_failing_write_fails_alone(store: SqlStore) -> None:
    shared = SharedTransactions(store.db, store.queue)
    build_ids = await _builds(store, 5)

    async def broken(conn: SharedConnection) -> int:
        await conn.execute(text("SELECT * FROM no_such_table"))
        return 0

    writes = [_schedule(store, b) for b in build_ids]
    writes.insert(2, broken)
    try:
        results = await asyncio.gather(*(shared.run(w) for w in writes), return_exceptions=True)
    finally:
        await shared.close()
    assert "no_such_table" in str(results[2])
    committed = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, int) for r in committed)
    assert len(set(committed)) == 5  # each ran again alone, in its own transaction
    records = await store.builds.get_each(build_ids)
    assert [r.phase for r in records if r is not None] == [Phase.BUILD_SCHEDULED] * 5


async def test_get_each_answers_in_order_with_none_for_unknown_ids(store: SqlStore) -> None:
    first, second = await _builds(store, 2)
    records = await store.builds.get_each([second, "missing", first, second])
    assert [r.id if r else None for r in records] == [second, None, first, second]


async def test_appends_that_need_no_answer_are_numbered_together(store: SqlStore) -> None:
    """`append_log`: lines land after what the log already held, in the order the writes
    made them, two writes to one build included; a build that does not exist takes
    nothing and fails no one."""
    shared = SharedTransactions(store.db, store.queue)
    first, second = await _builds(store, 2)
    await store.logs.append(first, [LogEntry("already there")])

    def appending(build_id: str, message: str):  # type: ignore[no-untyped-def]
        async def write(conn: SharedConnection) -> int:
            conn.append_log(build_id, [LogEntry(message), LogEntry(message + " too")])
            return int(await conn.scalar(text("SELECT txid_current()")))
        return write

    try:
        txids = await asyncio.gather(
            shared.run(appending(first, "a")),
            shared.run(appending(second, "b")),
            shared.run(appending("no-such-build", "c")),
            shared.run(appending(first, "d")),
        )
    finally:
        await shared.close()
    assert len(set(txids)) == 1
    assert [e.message for e in (await store.logs.read(first))[1]] == [
        "already there", "a", "a too", "d", "d too"]
    assert [e.message for e in (await store.logs.read(second))[1]] == ["b", "b too"]
    assert (await store.logs.read(first))[0] == 5
