"""The store tests' shared fixture: slipway's SQL store, once on SQLite and once on a
PostgreSQL database of its own (a module's tests that need more define `store` again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.postgres_server import PostgresServer

from slipway.store.facade import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'slipway.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        uri = server.create_database()
    s = await SqlStore(uri).open()
    yield s
    await s.close()
