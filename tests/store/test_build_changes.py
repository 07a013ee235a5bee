"""A committed write wakes this process's watchers of the builds it changed (what the log
stream waits on, api/sse.py); a write that is rolled back wakes nobody."""

from __future__ import annotations

import pytest
from support.enqueue import record_and_queue

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry, NewBuild


async def _build(store: SqlStore, repository: str) -> str:
    return (await record_and_queue(store, NewBuild(
        namespace="ns", repository=repository, tags=["latest"], registry="r:5000"))).id


async def test_a_commit_wakes_the_watchers_of_the_builds_it_changed(store: SqlStore) -> None:
    logged, moved, untouched = [await _build(store, name) for name in ("a", "b", "c")]
    with store.changes.watch(logged) as log_seen, store.changes.watch(moved) as move_seen, \
            store.changes.watch(untouched) as other_seen:
        async with store.write() as conn:
            await store.logs.append(logged, [LogEntry("a line")], conn)
            assert await store.builds.move_phase(conn, moved, Phase.CANCELLED)
            # inside the transaction nothing is committed yet, so nobody is woken
            assert not log_seen.is_set() and not move_seen.is_set()
        assert log_seen.is_set() and move_seen.is_set()
        assert not other_seen.is_set()


async def test_the_managers_shared_writes_wake_their_builds_watchers(store: SqlStore) -> None:
    build_id = await _build(store, "shared")
    shared = store.shared_writes()
    try:
        with store.changes.watch(build_id) as seen:
            await shared.run(lambda conn: store.builds.move_phase(
                conn, build_id, Phase.BUILD_SCHEDULED, log=[LogEntry("scheduled")]))
            assert seen.is_set()
    finally:
        await shared.close()


async def test_a_rolled_back_write_wakes_nobody(store: SqlStore) -> None:
    build_id = await _build(store, "a")
    before = await store.logs.count(build_id)
    with store.changes.watch(build_id) as seen:
        with pytest.raises(RuntimeError):
            async with store.write() as conn:
                await store.logs.append(build_id, [LogEntry("never kept")], conn)
                raise RuntimeError("the writer fails before the commit")
        assert not seen.is_set()
        assert await store.logs.count(build_id) == before
