"""The build log's rows in SQL: numbered by the build row's counter, inserted (or, in a
shared transaction, held for one insert of all writes' rows at its end).

Below both `logs.py` and `shared_transactions.py`, which each build on it: neither imports
the other."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Update,
    bindparam,
    column,
    insert,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from slipway.store.build_changes import mark_changed
from slipway.store.database import SqlConnection
from slipway.store.records import LogEntry
from slipway.store.schema import build_logs as logs
from slipway.store.schema import builds as b


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class DeferredLogRows:
    """A connection whose log rows are inserted later, all at once, just before its
    transaction commits (`shared_transactions.SharedConnection`)."""

    def __init__(self) -> None:
        self.log_rows: list[dict[str, Any]] = []


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
COUNTED_APPEND = counted(update(b).where(b.c.id == bindparam(BUILD_ID_PARAM)))


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
    if isinstance(conn, DeferredLogRows):
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
    for build_id in added:
        mark_changed(build_id)
    if not set_based or len(added) == 1:
        totals: dict[str, int] = {}
        for build_id, n in added.items():
            total = await conn.scalar(COUNTED_APPEND,
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
