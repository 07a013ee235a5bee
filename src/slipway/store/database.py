"""Engine creation, URL dialects, migrations, and SQLite write serialisation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from slipway.store.build_changes import BuildChanges
from slipway.store.errors import unavailable_error
from slipway.store.outage import OutageEpisodes

# how long an SQLite statement waits for another connection's write lock
SQLITE_BUSY_TIMEOUT_S = 30
# PostgreSQL connections a manager or API process keeps open
POSTGRES_POOL_SIZE = 20
# a pooled PostgreSQL connection unused this long is checked before it is handed out
PING_IF_IDLE_S = 2.0
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


class SqlConnection(Protocol):
    """What the store needs of a connection: an AsyncConnection, or `SyncConnection`."""

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        ...


class SyncConnection:
    """An SQLite write transaction run on the event loop's thread, behind the async API.

    Through aiosqlite every statement is a round trip to a thread and back through the
    event loop, which takes far longer than SQLite's own work on the statements a manager
    writes; with all writes serialised by one lock, those round trips would be the
    manager's ceiling (benchmarks/README.md). SQLite in WAL
    mode with synchronous=NORMAL does not sync on commit, so running the statements
    directly costs less than one round trip would."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)


class Database:
    """One engine. SQLite allows one writer at a time, so writes go through a process-wide
    lock there (instead of retrying on 'database is locked'), on a synchronous connection
    (`SyncConnection`); PostgreSQL needs neither."""

    def __init__(
        self, db_uri: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None
    ) -> None:
        self.db_uri = db_uri
        url = make_url(db_uri)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite and url.database in (None, "", ":memory:"):
            # (the config refuses it with the full explanation)
            raise ValueError("an in-memory SQLite database is private to each connection; "
                             "DB_URI must name a file")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
            Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
            # many concurrent readers (API, workers' calls) beside the one writer: keep
            # enough connections that none is opened (a thread, PRAGMAs) per use
            kwargs.update(pool_size=20, max_overflow=20)
        else:
            # A fixed set: opening a PostgreSQL connection forks a backend and loses the
            # connection's prepared statements, so overflow connections opened and closed
            # under load cost more (in PostgreSQL's CPU per build, benchmarks/README.md) than
            # waiting a moment for a pooled one. Most recently used first, so that under
            # light load the idle ones stay idle and are checked before use.
            kwargs.update(pool_size=POSTGRES_POOL_SIZE, max_overflow=0, pool_use_lifo=True)
            if connect_args:  # DB_CONNECTION_ARGS (sslmode, sslrootcert, ...)
                kwargs["connect_args"] = dict(connect_args)
        self.engine: AsyncEngine = create_async_engine(async_url(db_uri), **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            _ping_when_idle(self.engine.sync_engine)
        # PostgreSQL reads run without a transaction: under READ COMMITTED each statement
        # has its own snapshot either way, and BEGIN and ROLLBACK are two more round
        # trips per read (benchmarks/README.md)
        self._reads: AsyncEngine = self.engine if self.is_sqlite else \
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sync_writer: Engine | None = None
        self._sync_reader: Engine | None = None
        if self.is_sqlite:
            # one connection each, only ever used on the loop's thread (the writer's under
            # the write lock); neither is held across an await of real I/O
            self._sync_writer = _sync_sqlite_engine(db_uri)
            self._sync_reader = _sync_sqlite_engine(db_uri)
        self._write_lock = asyncio.Lock()
        self.outages = OutageEpisodes()
        # builds whose committed changes this process's log streams wait for
        self.changes = BuildChanges()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SqlConnection]:
        """A read-write transaction, committed on success. A database that does not
        answer (or is full) raises StoreUnavailable (StoreFull), see store/errors.py."""
        in_commit = False
        with self.changes.collecting() as changed:
            try:
                if self._sync_writer is not None:
                    async with self._write_lock:
                        with self._sync_writer.begin() as sync_conn:
                            yield SyncConnection(sync_conn)
                            in_commit = True
                else:
                    async with self.engine.begin() as conn:
                        yield conn
                        in_commit = True
            except Exception as exc:
                self._raise_unavailable(exc, in_commit=in_commit)
                raise
        self.outages.succeeded(wrote=True)
        self.changes.notify(changed)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read: on SQLite one snapshot for its statements, on PostgreSQL each
        statement's own (no transaction)."""
        try:
            async with self._reads.connect() as conn:
                yield conn
        except Exception as exc:
            self._raise_unavailable(exc)
            raise
        self.outages.succeeded(wrote=False)

    def held_reads(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One connection for many reads, held (a watcher's: no pool checkout per read);
        the caller handles its failures."""
        return self._reads.connect()

    @contextlib.asynccontextmanager
    async def lookup(self) -> AsyncIterator[SqlConnection]:
        """A read of a few rows by key. On SQLite it runs at once on the loop's thread:
        cheaper than `read()`'s thread round trips; scans and long reads use `read()`."""
        if self._sync_reader is None:
            async with self.read() as conn:
                yield conn
            return
        try:
            with self._sync_reader.connect() as sync_conn:
                yield SyncConnection(sync_conn)
                sync_conn.rollback()  # no snapshot left open to hold WAL checkpoints back
        except Exception as exc:
            self._raise_unavailable(exc)
            raise
        self.outages.succeeded(wrote=False)

    def _raise_unavailable(self, exc: Exception, *, in_commit: bool = False) -> None:
        """Raise the StoreUnavailable that `exc` means, if it means one."""
        error = unavailable_error(exc, self.db_uri, in_commit=in_commit)
        if error is None or error is exc:
            return
        # a connection found dead (PostgreSQL restarted since) is no outage yet: its
        # operation usually runs again on a fresh one (store/rerun.py), which tells
        if not error.rerun_safe:
            self.outages.failed(error, exc)
        raise error from exc

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        await asyncio.to_thread(upgrade_schema, self.db_uri)

    async def ping(self) -> bool:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        self.outages.succeeded(wrote=False)
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        for engine in (self._sync_writer, self._sync_reader):
            if engine is not None:
                engine.dispose()


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, only for a connection idle PING_IF_IDLE_S or more. A
    ping per checkout is a round trip per transaction, on the path every build takes; a
    connection in steady use has just proven itself. One that broke in
    that moment (PostgreSQL restarted) fails its statement, SQLAlchemy then renews the
    whole pool, and the callers' retry of transient errors covers that statement."""

    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_IF_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # the pool discards this connection and hands out a new one
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc

    event.listen(engine.pool, "checkin", checked_in)
    event.listen(engine.pool, "checkout", checkout)


def _sync_sqlite_engine(db_uri: str) -> Engine:
    """A one-connection synchronous engine for `SyncConnection`."""
    engine = create_engine(
        sync_url(db_uri), pool_size=1, max_overflow=0,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def upgrade_schema(db_uri: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(db_uri).replace("%", "%%"))
    command.upgrade(cfg, "head")
