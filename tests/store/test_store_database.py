"""The PostgreSQL connection pool: connections idle through a server restart are replaced
before use, so the first request after it does not fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from support.postgres_server import PostgresServer, postgres_available, running_postgres

from slipway.store import database
from slipway.store.database import Database
from slipway.store.errors import StoreUnavailable

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


async def _backend_pid(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_idle_connections_cut_by_a_restart_are_replaced_unseen(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_IF_IDLE_S", 0.0)  # every connection counts as idle
    db = Database(postgres.uri)
    try:
        first = await _backend_pid(db)
        postgres.kill()  # a crash: the pooled connection is cut
        postgres.start()
        assert await _backend_pid(db) != first  # no error: a new connection served it
    finally:
        await db.close()


async def test_a_connection_in_steady_use_is_not_pinged(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flip side, and the reason for the idle threshold: without a ping, a connection
    cut a moment after its last use fails its next statement, as a lost connection the
    store's operations run again on a fresh one (store/rerun.py), and the pool then
    renews itself."""
    monkeypatch.setattr(database, "PING_IF_IDLE_S", 3600.0)
    db = Database(postgres.uri)
    try:
        first = await _backend_pid(db)
        postgres.kill()
        postgres.start()
        with pytest.raises(StoreUnavailable) as lost:
            await _backend_pid(db)
        assert lost.value.rerun_safe
        assert await _backend_pid(db) != first
    finally:
        await db.close()
