"""The build log in SQL: append-only entries numbered from 0 in arrival order."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Text, cast, select

from slipway.store.database import Database, SqlConnection
from slipway.store.log_rows import BUILD_ID_PARAM, COUNTED_APPEND, append_with
from slipway.store.records import LogEntry
from slipway.store.schema import build_logs as logs
from slipway.store.schema import builds as b

__all__ = ["BuildLogs", "LogEntry"]


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
        total = await append_with(conn, build_id, COUNTED_APPEND, entries,
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
        # the data as text, decoded here: SQLAlchemy's JSON type decoded it at twice the
        # cost, most of the time of reading a 100,000-line log (benchmarks/ui_log.py)
        stmt = select(logs.c.message, logs.c.type, cast(logs.c.data, Text)).where(
            logs.c.build_id == build_id, logs.c.idx >= start)
        stmt = stmt.order_by(logs.c.idx)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.db.read() as conn:
            # the build row's counter, not count(*): counting a long log's rows on every
            # page made reading a 100,000-line log in pages quadratic
            total = await conn.scalar(select(b.c.log_count).where(b.c.id == build_id))
            rows = (await conn.execute(stmt)).all()
        loads = json.loads
        return int(total or 0), [
            LogEntry(message, kind, (loads(data) if data else None) or {})
            for message, kind, data in rows]
