"""The build log in SQL: append-only entries numbered from 0 in arrival order.

Once its build has ended, a log moves to the log archive (store/log_archiving.py) and the
build row records it (`log_archived_at`); reads then fall through to the archive, which
holds the same entries under the same numbers. Entries appended after the move (none are
expected: the log ends with its build) stay rows, numbered after the archived ones."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Text, cast, select

from slipway.store.build_changes import mark_changed
from slipway.store.database import Database, SqlConnection
from slipway.store.log_archive import ArchiveUnavailable, LogArchive
from slipway.store.log_rows import BUILD_ID_PARAM, COUNTED_APPEND, append_with
from slipway.store.records import LogEntry
from slipway.store.schema import build_logs as logs
from slipway.store.schema import builds as b

__all__ = ["BuildLogs", "LogEntry"]


class BuildLogs:
    def __init__(self, db: Database, archive: LogArchive | None = None) -> None:
        self.db = db
        # where archived logs are read from (None: no log is archived by this process,
        # and a log archived by another is an error to read)
        self.archive = archive

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
        mark_changed(build_id)
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
        """(total, entries from `start`), from the table or, once archived, the archive."""
        total, archived, entries = await self._read_rows(build_id, start, limit)
        if archived is None:
            return total, entries
        return total, await self._read_archived(build_id, start, limit)

    async def _read_archived(
        self, build_id: str, start: int, limit: int | None
    ) -> list[LogEntry]:
        if self.archive is None:
            raise ArchiveUnavailable(
                f"the log of build {build_id} is archived, and this process has no log "
                "archive configured (LOG_ARCHIVE)")
        archived = await self.archive.read(build_id)
        end = None if limit is None else start + limit
        entries = archived[start:end]
        if limit is not None and len(entries) >= limit:
            return entries
        # entries written after the archive (rows numbered from its end)
        first_row = max(start, len(archived))
        rest = None if limit is None else limit - len(entries)
        _, _, late = await self._read_rows(build_id, first_row, rest, archived_too=True)
        return entries + late

    async def _read_rows(
        self, build_id: str, start: int, limit: int | None, *, archived_too: bool = False
    ) -> tuple[int, float | None, list[LogEntry]]:
        """(total, when the log was archived or None, the rows from `start`); no rows are
        read of an archived log unless `archived_too`."""
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
            row = (await conn.execute(
                select(b.c.log_count, b.c.log_archived_at).where(b.c.id == build_id))).first()
            total, archived = (int(row[0] or 0), row[1]) if row is not None else (0, None)
            if archived is not None and not archived_too:
                return total, archived, []
            rows = (await conn.execute(stmt)).all()
            if archived is None and len(rows) < _expected(total, start, limit):
                # archived between the two statements (PostgreSQL reads are not one
                # snapshot): the rows are going, the archive has them
                archived = await conn.scalar(
                    select(b.c.log_archived_at).where(b.c.id == build_id))
                if archived is not None:
                    return total, archived, []
        loads = json.loads
        return total, archived, [
            LogEntry(message, kind, (loads(data) if data else None) or {})
            for message, kind, data in rows]


def _expected(total: int, start: int, limit: int | None) -> int:
    """How many entries a read from `start` should find in a log of `total`."""
    available = max(0, total - start)
    return available if limit is None else min(limit, available)
