"""The queue's part of QUEUE_TTL (store/queue.py), on SQLite and PostgreSQL: an item put
with a TTL is due once it passes, a claim takes it out of reach for good, the expiry's
removal is guarded against that claim, and the look reads ix_queue_start_by (migration
0007_queue_ttl) rather than the queue."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text
from support.postgres_server import PostgresServer

from slipway.store.database import sync_url
from slipway.store.facade import SqlStore
from slipway.store.queue import due_to_expire_statement
from slipway.store.records import NewBuild


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/q.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
async def store(db_uri: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore(db_uri).open()  # migrated to the newest revision
    try:
        yield opened
    finally:
        await opened.close()


async def _put(store: SqlStore, repository: str, start_within: float | None) -> str:
    async with store.write() as conn:
        record = await store.builds.create(conn, NewBuild(
            namespace="ns", repository=repository, tags=["latest"], registry="r.test"))
        await store.queue.put(conn, record.id, "ns", f"ns/{repository}",
                              start_within=start_within)
    return record.id


async def test_due_items_and_the_guarded_removal(store: SqlStore) -> None:
    now = time.time()
    soon = await _put(store, "a", 60)
    later = await _put(store, "b", 600)
    await _put(store, "c", None)  # no TTL: never due
    assert await store.queue.due_to_expire(now, 10) == []
    assert [i.build_id for i in await store.queue.due_to_expire(now + 61, 10)] == [soon]
    assert [i.build_id for i in await store.queue.due_to_expire(now + 601, 10)] == [
        soon, later]  # the longest overdue first
    assert len(await store.queue.due_to_expire(now + 601, 1)) == 1  # in batches
    # the oldest of each repository is claimed: all three, their TTLs no longer apply
    claimed = await store.queue.claim("m", limit=10, lease_seconds=30)
    assert len(claimed) == 3
    assert await store.queue.due_to_expire(now + 601, 10) == []
    async with store.write() as conn:
        assert not await store.queue.expire(conn, claimed[0].id, now + 601)
    # given back for a retry, a build that started is still not due
    async with store.write() as conn:
        await store.queue.incomplete(conn, claimed[0].id)
    assert await store.queue.due_to_expire(now + 601, 10) == []


async def test_an_unclaimed_item_is_removed_once(store: SqlStore) -> None:
    build_id = await _put(store, "a", 1)
    [item] = await store.queue.due_to_expire(time.time() + 2, 10)
    async with store.write() as conn:
        assert await store.queue.expire(conn, item.id, time.time() + 2)
    async with store.write() as conn:
        assert not await store.queue.expire(conn, item.id, time.time() + 2)
    assert await store.queue.get_for_build(build_id) is None


def test_the_look_reads_its_index(db_uri: str, store: SqlStore) -> None:
    """PostgreSQL plans an empty table as a sequential scan whatever its indexes; with
    `enable_seqscan = off` its plan shows whether the index can serve the read."""
    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    try:
        sql = str(due_to_expire_statement(time.time(), 100).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
                plan = "\n".join(str(r[-1]) for r in rows)
            else:
                conn.execute(text("SET enable_seqscan = off"))
                plan = "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {sql}")))
    finally:
        engine.dispose()
    assert "ix_queue_start_by" in plan, plan
