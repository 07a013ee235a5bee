"""Quay mode's fixtures: one private PostgreSQL for the session, a fresh database with
Quay's tables per test (support/quay_db.py), slipway's Database on it, a private Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from support.postgres_server import PostgresServer, running_postgres
from support.quay_db import QuayDatabase
from support.redis_server import RedisServer

from slipway.store.database import Database


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def quay(postgres: PostgresServer) -> QuayDatabase:
    """An empty Quay: its tables, enum rows and alembic_version, in a new database."""
    return QuayDatabase(postgres.create_database()).create()


@pytest_asyncio.fixture(loop_scope="session")
async def db(quay: QuayDatabase) -> AsyncIterator[Database]:
    database = Database(quay.uri)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()
