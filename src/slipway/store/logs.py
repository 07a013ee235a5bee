"""The build log: append-only entries numbered from 0 in arrival order."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Update,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from slipway.store.database import Database, SqlConnection
from slipway.store.schema import build_logs as logs
from slipway.store.schema import builds as b
from slipway.store.shared_transactions import SharedConnection


@dataclass(frozen=True)
class LogEntry:
    message: str
    type: str | None = None  # "command" | "phase" | "error" | None (plain output)
    data: dict[str, Any] = field(default_factory=dict)

    def as_api(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"message": self.message, "data": self.data}
        if self.type:
            entry["type"] = self.type
        return entry


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# the parameters of a `counted` UPDATE: the build's id, and how many entries it adds
BUILD_ID_PARAM = "build_id_key"
LOG_ADDED_PARAM = "log_added"


def counted(statement: Update) -> Update:
    """`statement`, an UPDATE of one build's row, also raising its log_count by the
    LOG_ADDED_PARAM parameter and returning the new count."""
    return statement.values(
        log_count=b.c.log_count + bindparam(LOG_ADDED_PARAM, type_=Integer())
    ).returning(b.c.log_count)


# the plain append: the build's row by id (BUILD_ID_PARAM)
_COUNTED_APPEND = counted(update(b).where(b.c.id == bindparam(BUILD_ID_PARAM)))


async def append_with(
    conn: SqlConnection,
    build_id: str,
    statement: Update,
    entries: Sequence[LogEntry],
    params: Mapping[str, Any],
) -> int | None:
    """Run `statement`, a `counted` UPDATE of the build's row, with `params`; if it
    matched, write the entries under the numbers it took. The new total, or None when the
    UPDATE matched no row (its WHERE is the caller's: the build, or the build in some
    state)."""
    total = await conn.scalar(statement, {**params, LOG_ADDED_PARAM: len(entries)})
    if total is None:
        return None
    rows = log_rows(build_id, int(total) - len(entries), entries)
    if isinstance(conn, SharedConnection):
        conn.log_rows.extend(rows)  # inserted with the other writes' rows, before commit
    else:
        await insert_log_rows(conn, rows)
    return int(total)


def log_rows(build_id: str, first: int, entries: Sequence[LogEntry]) -> list[dict[str, Any]]:
    """The log table rows of `entries`, numbered from `first`."""
    stamp = now_iso()
    return [
        {
            "build_id": build_id,
            "idx": first + i,
            "message": e.message,
            "type": e.type,
            "data": {"datetime": stamp, **e.data},
        }
        for i, e in enumerate(entries)
    ]


async def raise_log_counts(
    conn: SqlConnection, added: Mapping[str, int], *, set_based: bool
) -> dict[str, int]:
    """Raise each build's log_count by its number of new entries; the new totals, of the
    builds that exist. `set_based` (PostgreSQL): one UPDATE for all, from a VALUES list."""
    if not set_based or len(added) == 1:
        totals: dict[str, int] = {}
        for build_id, n in added.items():
            total = await conn.scalar(_COUNTED_APPEND,
                                      {BUILD_ID_PARAM: build_id, LOG_ADDED_PARAM: n})
            if total is not None:
                totals[build_id] = int(total)
        return totals
    new = values(column("id", String), column("n", Integer), name="new").data(list(added.items()))
    result = await conn.execute(
        update(b).where(b.c.id == new.c.id)
        .values(log_count=b.c.log_count + new.c.n).returning(b.c.id, b.c.log_count)
    )
    return {str(build_id): int(total) for build_id, total in result.all()}


async def insert_log_rows(conn: SqlConnection, rows: list[dict[str, Any]]) -> None:
    if len(rows) >= COPY_FROM_ROWS and isinstance(conn, AsyncConnection) and (
        conn.dialect.name == "postgresql"
    ):
        await _copy_rows(conn, rows)
    else:
        await conn.execute(insert(logs), rows)


# PostgreSQL's COPY takes one round trip more than an INSERT, and far less work per row,
# on both sides, than an INSERT executed per row: worth it from a few dozen rows
COPY_FROM_ROWS = 32
_COPY = f"COPY {logs.name} (build_id, idx, message, type, data) FROM STDIN"


async def _copy_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection  # psycopg's, in the transaction `conn` has begun
    assert pg is not None
    async with pg.cursor() as cursor, cursor.copy(_COPY) as copy:
        for r in rows:
            await copy.write_row(
                (r["build_id"], r["idx"], r["message"], r["type"], json.dumps(r["data"]))
            )


class BuildLogs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self, build_id: str, entries: Sequence[LogEntry], conn: SqlConnection | None = None
    ) -> int:
        """Append in order; returns the new total. Numbers come from the build row's
        counter, updated in the same transaction, so concurrent writers never collide."""
        if conn is None:
            async with self.db.write() as c:
                return await self._append(c, build_id, entries)
        return await self._append(conn, build_id, entries)

    async def _append(
        self, conn: SqlConnection, build_id: str, entries: Sequence[LogEntry]
    ) -> int:
        if not entries:
            return await self.count(build_id, conn)
        total = await append_with(conn, build_id, _COUNTED_APPEND, entries,
                                  {BUILD_ID_PARAM: build_id})
        if total is None:
            raise KeyError(build_id)
        return total

    async def count(self, build_id: str, conn: SqlConnection | None = None) -> int:
        stmt = select(b.c.log_count).where(b.c.id == build_id)
        if conn is not None:
            return int(await conn.scalar(stmt) or 0)
        async with self.db.lookup() as c:
            return int(await c.scalar(stmt) or 0)

    async def read(
        self, build_id: str, start: int = 0, limit: int | None = None
    ) -> tuple[int, list[LogEntry]]:
        """(total, entries from `start`)."""
        stmt = select(logs).where(logs.c.build_id == build_id, logs.c.idx >= start)
        stmt = stmt.order_by(logs.c.idx)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.db.read() as conn:
            total = await conn.scalar(select(func.count()).where(logs.c.build_id == build_id))
            rows = (await conn.execute(stmt)).all()
        return int(total or 0), [LogEntry(r.message, r.type, r.data or {}) for r in rows]
