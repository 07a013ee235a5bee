"""The build queue keeps Quay's WorkQueue semantics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.enqueue import record_and_queue
from support.postgres_server import PostgresServer

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.records import NewBuild, WaitReason


@pytest.fixture(params=["sqlite", "postgresql"])
def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every queue test runs on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/q.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
async def store(db_uri: str):  # type: ignore[no-untyped-def]
    s = await SqlStore(db_uri).open()
    yield s
    await s.close()


async def _submit(store: SqlStore, ns: str = "ns", repo: str = "repo") -> str:
    record = await record_and_queue(store, NewBuild(
        namespace=ns, repository=repo, tags=["latest"], registry="r:5000"))
    return record.id


async def test_new_build_is_waiting_with_three_retries(store: SqlStore) -> None:
    build_id = await _submit(store)
    record = await store.builds.get(build_id)
    assert record is not None and record.phase is Phase.WAITING
    item = await store.queue.get_for_build(build_id)
    assert item is not None and item.retries_remaining == 3


async def test_claim_counts_an_attempt_and_takes_a_lease(store: SqlStore) -> None:
    build_id = await _submit(store)
    (item,) = await store.queue.claim("m1", limit=5, lease_seconds=60)
    assert item.build_id == build_id and item.retries_remaining == 2
    assert item.processing_expires is not None and item.processing_expires > time.time()
    # leased: nobody else gets it
    assert await store.queue.claim("m2", limit=5, lease_seconds=60) == []


async def test_expired_lease_is_claimed_again_with_one_retry_less(store: SqlStore) -> None:
    await _submit(store)
    (first,) = await store.queue.claim("m1", limit=1, lease_seconds=0.01)
    await asyncio.sleep(0.05)
    (again,) = await store.queue.claim("m2", limit=1, lease_seconds=60)
    assert again.id == first.id and again.retries_remaining == 1


async def test_extend_processing_keeps_the_lease(store: SqlStore) -> None:
    await _submit(store)
    (item,) = await store.queue.claim("m1", limit=1, lease_seconds=0.01)
    async with store.db.write() as conn:  # in the caller's transaction
        assert await store.queue.extend_processing_many([(item.id, 60)], conn) == [True]
    await asyncio.sleep(0.05)
    assert await store.queue.claim("m2", limit=1, lease_seconds=60) == []


async def test_leases_pushed_out_together_say_which_items_were_still_processing(
    store: SqlStore,
) -> None:
    for repo in ("a", "b", "c"):
        await _submit(store, repo=repo)
    items = await store.queue.claim("m1", limit=3, lease_seconds=0.01)
    async with store.db.write() as conn:  # one ends: its lease is no longer anyone's
        await store.queue.complete(conn, items[2].id)
    leases = [(items[0].id, 60.0), (items[1].id, 0.01), (items[2].id, 60.0), (999, 60.0)]
    assert await store.queue.extend_processing_many(leases) == [True, True, False, False]
    await asyncio.sleep(0.05)
    # the one pushed out by 60 s stays claimed; the other's short lease ran out
    again = await store.queue.claim("m2", limit=3, lease_seconds=60)
    assert [i.id for i in again] == [items[1].id]


async def test_incomplete_with_and_without_restored_retry(store: SqlStore) -> None:
    await _submit(store)
    (item,) = await store.queue.claim("m1", limit=1, lease_seconds=60)
    async with store.db.write() as conn:
        await store.queue.incomplete(conn, item.id, restore_retry=True)
    (item,) = await store.queue.claim("m1", limit=1, lease_seconds=60)
    assert item.retries_remaining == 2  # the refunded attempt
    async with store.db.write() as conn:
        await store.queue.incomplete(conn, item.id, retry_after=3600)
    assert await store.queue.claim("m1", limit=1, lease_seconds=60) == []  # available_after
    assert (await store.queue.next_available_at(time.time())) is not None


async def test_no_retries_left_is_never_claimed(store: SqlStore) -> None:
    await _submit(store)
    for expected in (2, 1, 0):
        (item,) = await store.queue.claim("m1", limit=1, lease_seconds=60)
        assert item.retries_remaining == expected
        async with store.db.write() as conn:
            await store.queue.incomplete(conn, item.id)
    assert await store.queue.claim("m1", limit=1, lease_seconds=60) == []


async def test_complete_removes_the_item(store: SqlStore) -> None:
    build_id = await _submit(store)
    (item,) = await store.queue.claim("m1", limit=1, lease_seconds=60)
    async with store.db.write() as conn:
        await store.queue.complete(conn, item.id)
    assert await store.queue.get_for_build(build_id) is None


async def test_one_build_per_repository_fifo(store: SqlStore) -> None:
    a1 = await _submit(store, repo="a")
    a2 = await _submit(store, repo="a")
    b1 = await _submit(store, repo="b")
    claimed = await store.queue.claim("m1", limit=10, lease_seconds=60)
    assert [i.build_id for i in claimed] == [a1, b1]
    async with store.db.write() as conn:
        await store.queue.complete(conn, claimed[0].id)
    (nxt,) = await store.queue.claim("m1", limit=10, lease_seconds=60)
    assert nxt.build_id == a2


async def test_round_robin_across_namespaces(store: SqlStore) -> None:
    many = [await _submit(store, ns="many", repo=f"r{i}") for i in range(4)]
    one = await _submit(store, ns="one")
    claimed = await store.queue.claim("m1", limit=3, lease_seconds=60)
    # FIFO alone would take three of "many"; round robin lets "one" in
    assert [i.build_id for i in claimed] == [many[0], one, many[1]]


async def test_namespace_limit_counts_running_builds(store: SqlStore) -> None:
    for i in range(3):
        await _submit(store, ns="capped", repo=f"r{i}")
    first = await store.queue.claim("m1", limit=10, lease_seconds=60,
                                    namespace_limits={"capped": 2})
    assert len(first) == 2
    assert await store.queue.claim("m2", limit=10, lease_seconds=60,
                                   namespace_limits={"capped": 2}) == []


async def test_log_entries_are_numbered_in_order(store: SqlStore) -> None:
    from slipway.store.records import LogEntry

    build_id = await _submit(store)
    assert await store.logs.append(build_id, [LogEntry("a"), LogEntry("b")]) == 2
    assert await store.logs.append(build_id, [LogEntry("c", "command")]) == 3
    total, entries = await store.logs.read(build_id, start=1)
    assert total == 3
    assert [(e.message, e.type) for e in entries] == [("b", None), ("c", "command")]
    assert "datetime" in entries[0].data



async def test_a_long_run_of_log_entries_is_stored_whole_and_in_order(store: SqlStore) -> None:
    """Long runs take PostgreSQL's COPY path: text that needs escaping comes back as is."""
    from slipway.store.log_rows import COPY_FROM_ROWS
    from slipway.store.records import LogEntry

    build_id = await _submit(store)
    awkward = ["tab\there", "back\\slash \\N", "", "quote ' and \" ünïcode", "\\."]
    lines = [LogEntry(awkward[i % len(awkward)] + f" #{i}", None, {"phase": "building",
                                                                   "id": f"l{i}"})
             for i in range(COPY_FROM_ROWS * 3)]
    lines[5] = LogEntry("STEP 2/2: RUN make", "command", {"progressDetail": {"current": 1}})
    assert await store.logs.append(build_id, [LogEntry("before")]) == 1
    assert await store.logs.append(build_id, lines) == 1 + len(lines)
    total, entries = await store.logs.read(build_id, start=1)
    assert total == 1 + len(lines)
    assert [(e.message, e.type) for e in entries] == [(e.message, e.type) for e in lines]
    assert [{k: v for k, v in e.data.items() if k != "datetime"} for e in entries] == [
        e.data for e in lines]

# -- several managers claiming at once (PostgreSQL: each is its own engine/connection pool) --


async def _managers(db_uri: str, count: int) -> list[SqlStore]:
    return [await SqlStore(db_uri).open() for _ in range(count)]


async def test_concurrent_claims_never_share_an_item_or_a_repository(
    postgres: PostgresServer,
) -> None:
    uri = postgres.create_database()
    stores = await _managers(uri, 4)
    try:
        submitted = [await _submit(stores[0], ns=f"ns{i % 3}", repo=f"r{i % 7}")
                     for i in range(60)]
        seen: list[str] = []
        for _ in range(40):
            rounds = await asyncio.gather(*(
                s.queue.claim(f"m{n}", limit=5, lease_seconds=60) for n, s in enumerate(stores)
            ))
            claimed = [item for items in rounds for item in items]
            if not claimed and len(seen) == len(submitted):
                break
            # one item per repository at a time, each item to one manager only
            repos = [item.repository for item in claimed]
            assert len(repos) == len(set(repos)), repos
            seen.extend(item.build_id for item in claimed)
            async with stores[0].db.write() as conn:
                for item in claimed:
                    await stores[0].queue.complete(conn, item.id)
        assert sorted(seen) == sorted(submitted)  # every build claimed, none twice
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_claims_respect_a_namespace_limit(postgres: PostgresServer) -> None:
    uri = postgres.create_database()
    stores = await _managers(uri, 4)
    try:
        for i in range(12):
            await _submit(stores[0], ns="capped", repo=f"r{i}")
        rounds = await asyncio.gather(*(
            s.queue.claim(f"m{n}", limit=5, lease_seconds=60, namespace_limits={"capped": 3})
            for n, s in enumerate(stores)
        ))
        assert sum(len(items) for items in rounds) == 3
    finally:
        for s in stores:
            await s.close()


async def test_why_waiting_names_each_reason(store: SqlStore) -> None:
    """One build per repository, the namespace's limit, all workers busy, a retry, next:
    what a waiting build's status.waiting_for is made from, on both backends."""
    running = await _submit(store, "ns", "one")
    small_running = await _submit(store, "small", "x")
    claimed = await store.queue.claim("m1", limit=2, lease_seconds=60)
    assert {i.build_id for i in claimed} == {running, small_running}
    behind_running = await _submit(store, "ns", "one")
    small_waiting = await _submit(store, "small", "y")
    other = await _submit(store, "other", "z")
    ahead = await _submit(store, "ns", "two")
    behind_ahead = await _submit(store, "ns", "two")
    ids = [behind_running, small_waiting, other, ahead, behind_ahead, running]
    reasons = await store.queue.why_waiting(ids, namespace_limits={"small": 1},
                                            workers_per_manager=2)
    assert running not in reasons  # it runs: it does not wait
    assert reasons[behind_running] == WaitReason("repository", running, running=True)
    assert reasons[behind_ahead] == WaitReason("repository", ahead)
    assert reasons[small_waiting] == WaitReason("namespace", limit=1)
    assert reasons[other] == WaitReason("workers", limit=2)
    roomy = await store.queue.why_waiting([other, small_waiting], workers_per_manager=10)
    assert roomy == {other: WaitReason("next"), small_waiting: WaitReason("next")}
    (again,) = [i for i in claimed if i.build_id == small_running]
    async with store.db.write() as conn:
        await store.queue.incomplete(conn, again.id, retry_after=300)
    [retry] = (await store.queue.why_waiting([small_running])).values()
    assert retry.kind == "retry" and retry.until is not None and retry.until > time.time()
