"""The database's size on disk, and giving freed space back as it turns over.

SQLite keeps the pages retention frees inside the file: with auto_vacuum=INCREMENTAL,
`PRAGMA incremental_vacuum` after a pass hands them back to the file system. That mode
changes only through a full VACUUM outside any transaction, done here once when the store
opens (a new database is small then; an old one is rewritten once: seconds per 100 MB).
PostgreSQL's autovacuum reuses freed space by itself."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from sqlalchemy import text
from sqlalchemy.engine import make_url

from slipway.store.database import SQLITE_BUSY_TIMEOUT_S, Database

log = logging.getLogger("slipway.store")

SQLITE_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def ensure_incremental_vacuum(db_uri: str) -> bool:
    """Switch an SQLite database to auto_vacuum=INCREMENTAL if it is not yet; whether it
    is now. A database another process holds open stays as it is (logged), and is
    switched at a later start."""
    url = make_url(db_uri)
    if url.get_backend_name() != "sqlite":
        return False
    conn = sqlite3.connect(str(url.database), timeout=5, isolation_level=None)
    try:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == SQLITE_INCREMENTAL:
            return True
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
        return bool(conn.execute("PRAGMA auto_vacuum").fetchone()[0] == SQLITE_INCREMENTAL)
    except sqlite3.OperationalError as exc:
        log.warning("the SQLite database could not be switched to incremental vacuum (%s); "
                    "freed space is reused but not given back until it is", exc)
        return False
    finally:
        conn.close()


async def database_size(db: Database) -> int:
    """Bytes the database takes: SQLite's pages (page_count * page_size, the WAL aside),
    PostgreSQL's pg_database_size of the current database."""
    async with db.read() as conn:
        if db.is_sqlite:
            pages = await conn.scalar(text("PRAGMA page_count"))
            page_size = await conn.scalar(text("PRAGMA page_size"))
            return int(pages or 0) * int(page_size or 0)
        return int(await conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)


async def give_back_free_pages(db: Database) -> int:
    """SQLite: return the free pages to the file system (incremental_vacuum); the bytes
    the file shrank by. PostgreSQL: 0 (autovacuum)."""
    if not db.is_sqlite:
        return 0
    before = await database_size(db)
    # under the store's write lock, so that the manager's writes wait in line rather than
    # on SQLite's busy timeout (the writer's transaction has taken no lock yet: it begins
    # at its first statement)
    async with db.write():
        await asyncio.to_thread(_incremental_vacuum, str(make_url(db.db_uri).database))
    return max(0, before - await database_size(db))


def _incremental_vacuum(path: str) -> None:
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        # run as a script: SQLite frees one page per step of the pragma, and
        # `execute` would step it once
        conn.executescript("PRAGMA incremental_vacuum;")
    finally:
        conn.close()
