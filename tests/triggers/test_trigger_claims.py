"""What keeps several managers (and API processes) from acting twice, on SQLite and on a
real PostgreSQL: a due schedule, a moved base image, a status post and a delivery id are
each claimed by exactly one of concurrent callers."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.postgres_server import PostgresServer

from slipway.store.facade import SqlStore
from slipway.store.records import NewBuild, StatusRow

CALLERS = 5


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path}/claims.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        uri = server.create_database()
    opened = await SqlStore(uri).open()
    opened.secrets.unlock(base64.urlsafe_b64encode(os.urandom(32)))
    try:
        yield opened
    finally:
        await opened.close()


async def test_each_claim_has_one_winner(store: SqlStore) -> None:
    triggers = store.triggers
    due = time.time() - 5
    trigger = await triggers.create("acme", "web", "t", "github", "https://h/a/b.git",
                                    {"schedule": {"cron": "0 * * * *"}},
                                    {"webhook_secret": "s3cret-value"}, due)

    runs = await asyncio.gather(*(triggers.claim_run(trigger.id, due, due + 3600)
                                  for _ in range(CALLERS)))
    assert sorted(runs) == [False] * (CALLERS - 1) + [True]
    assert (await triggers.get(trigger.id)).next_run == due + 3600  # type: ignore[union-attr]

    moved = await asyncio.gather(*(triggers.swap_base_digests(
        trigger.id, {}, {"reg/base:1": f"sha256:{i}"}) for i in range(CALLERS)))
    assert sorted(moved) == [False] * (CALLERS - 1) + [True]

    ids = await asyncio.gather(*(triggers.record_delivery(
        trigger.id, "delivery-1", "push", "received", "") for _ in range(CALLERS)))
    assert sum(i is not None for i in ids) == 1

    async with store.write() as conn:
        build = await store.builds.create(conn, NewBuild("acme", "web", ["x"], "r:5000"))
    await triggers.track_status(build.id, trigger.id)
    now = time.time()
    [row] = await triggers.statuses_due(now)
    assert row == StatusRow(build.id, trigger.id, None, 0)
    posts = await asyncio.gather(*(triggers.claim_status(row, "queued", now + 2, now)
                                   for _ in range(CALLERS)))
    assert sorted(posts) == [False] * (CALLERS - 1) + [True]
    # the credentials are sealed: the table holds no secret in clear
    assert "s3cret-value" not in str(await _raw_sealed(store, trigger.id))


async def _raw_sealed(store: SqlStore, trigger_id: str) -> str:
    from sqlalchemy import select

    from slipway.store.schema import triggers as t

    async with store.db.read() as conn:
        return str(await conn.scalar(select(t.c.sealed).where(t.c.id == trigger_id)))
