"""Deleting build-log rows in small transactions: a log of 100,000 lines is many batches,
many short logs share one, and a pause between batches lets the hot path's writes (log
lines, phase moves: SQLite has one writer) go first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import delete

from slipway.store.database import Database
from slipway.store.schema import build_logs as logs

# (build id, first idx, end idx or None: to the last row)
Range = tuple[str, int, int | None]


async def delete_log_rows(
    db: Database, logs_to_delete: Sequence[tuple[str, int]], *, batch_size: int,
    pause: float, whole: bool,
) -> int:
    """Delete the rows of each (build id, count) in transactions of about `batch_size`
    rows: those numbered below `count`, or with `whole` every row of the build. The rows
    counted deleted."""
    deleted = 0
    pending: list[Range] = []
    pending_rows = 0
    for build_id, count in logs_to_delete:
        first = 0
        while True:
            take = min(batch_size - pending_rows, count - first)
            end = first + take
            last = end >= count
            pending.append((build_id, first, None if (last and whole) else end))
            pending_rows += take
            first = end
            if pending_rows >= batch_size:
                deleted += await _delete_ranges(db, pending)
                pending, pending_rows = [], 0
                await asyncio.sleep(pause)
            if last:
                break
    if pending:
        deleted += await _delete_ranges(db, pending)
    return deleted


async def _delete_ranges(db: Database, ranges: list[Range]) -> int:
    rows = 0
    async with db.write() as conn:
        for build_id, first, end in ranges:
            where = [logs.c.build_id == build_id, logs.c.idx >= first]
            if end is not None:
                where.append(logs.c.idx < end)
            rows += (await conn.execute(delete(logs).where(*where))).rowcount or 0
    return rows
