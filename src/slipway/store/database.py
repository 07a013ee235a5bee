"""Engine creation, URL dialects, migrations, and SQLite write serialisation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def async_url(db_uri: str) -> str:
    """Quay-style `sqlite:///...` / `postgresql://...` -> the async driver we use."""
    url = make_url(db_uri)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return str(url.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(
        f"DB_URI {url.render_as_string(hide_password=True)!r}: unsupported database "
        f"{backend!r}; use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def sync_url(db_uri: str) -> str:
    url = make_url(db_uri)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url.set(drivername="sqlite").render_as_string(hide_password=False)


class Database:
    """One engine. SQLite allows one writer at a time, so writes go through a process-wide
    lock there (instead of retrying on 'database is locked'); PostgreSQL needs none."""

    def __init__(self, db_uri: str, *, echo: bool = False) -> None:
        self.db_uri = db_uri
        self.is_sqlite = make_url(db_uri).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = make_url(db_uri).database
            kwargs["connect_args"] = {"timeout": 30}
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # many concurrent readers (API, workers' calls) beside the one writer: keep
                # enough connections that none is opened (a thread, PRAGMAs) per use
                kwargs.update(pool_size=20, max_overflow=20)
        else:
            # enough kept open for a busy manager: opening a PostgreSQL connection forks a
            # backend (milliseconds of server CPU), so churning overflow ones is costly
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url(db_uri), **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed on success."""
        if self.is_sqlite:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        await asyncio.to_thread(upgrade_schema, self.db_uri)

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def upgrade_schema(db_uri: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(db_uri).replace("%", "%%"))
    command.upgrade(cfg, "head")
