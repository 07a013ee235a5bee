"""Deleting build-log rows in small transactions: a log of 100,000 lines is many batches,
many short logs share one, and a pause between batches lets the hot path's writes (log
lines, phase moves: SQLite has one writer) go first.

The pause is at least as long as the batch took (`yield_after`): housekeeping takes at
most about half of the database's writing time, however busy it is, and still deletes
faster than builds log (a fixed 50 ms after each 500 rows deleted 10,000 rows a second,
less than one busy manager writes: benchmarks/README.md, "Retention")."""

from __future__ import annotations

import asyncio
import time
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
                started = time.monotonic()
                deleted += await _delete_ranges(db, pending)
                pending, pending_rows = [], 0
                await yield_after(started, pause)
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


async def yield_after(started: float, pause: float) -> None:
    """Pause after a batch begun at `started` (monotonic): `pause`, or as long as the batch
    took if that is longer."""
    await asyncio.sleep(max(pause, time.monotonic() - started))
