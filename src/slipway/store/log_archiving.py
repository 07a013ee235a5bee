"""Moving ended builds' logs from the database to the log archive.

For each build that ended at least `after` seconds ago and whose log is still rows: read
the rows, write them as one object (store/log_archive.py) and confirm its size, then in
one transaction record `log_archived_at` on the build row, only if no entry was appended
meanwhile (compare-and-set on `log_count`: otherwise the next pass tries again), and only
then delete the rows, in small batches. From the moment `log_archived_at` is set, reads
go to the archive (store/logs.py), so no reader ever finds the log half gone. The builds
are found from the database, not from an event, so a log whose build ended while no
manager ran, or during a crash, is archived by the next pass."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select, update

from slipway.domain.phases import FINAL_PHASES
from slipway.store.database import Database
from slipway.store.log_archive import ArchiveUnavailable, LogArchive
from slipway.store.log_rows_removal import delete_log_rows
from slipway.store.logs import BuildLogs
from slipway.store.schema import builds as b

log = logging.getLogger("slipway.store")

# logs archived together: their objects written side by side, one transaction recording
# them, their rows deleted in batches (GROUP_BATCHES batches' worth of rows per group)
GROUP_BATCHES = 10

_FINAL = sorted(p.value for p in FINAL_PHASES)


@dataclass
class Archived:
    logs: int = 0
    lines: int = 0
    bytes_written: int = 0
    failed: int = 0


def _due(now: float, after: float) -> ColumnElement[bool]:
    return and_(b.c.log_archived_at.is_(None), b.c.completed.is_not(None),
                b.c.completed <= now - after, b.c.phase.in_(_FINAL))


class LogArchiver:
    def __init__(self, db: Database, logs: BuildLogs, archive: LogArchive, *,
                 after: float, batch_size: int, pause: float) -> None:
        self.db = db
        self.logs = logs
        self.archive = archive
        self.after = after
        self.batch_size = batch_size
        self.pause = pause
        # builds whose log could not be archived in this process (the rows do not match
        # their count): tried again after a restart, not on every pass
        self._skipped: set[str] = set()

    async def due(self, now: float | None = None) -> list[tuple[str, int]]:
        """(build id, entries) of every log due to be archived."""
        now = time.time() if now is None else now
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(b.c.id, b.c.log_count).where(_due(now, self.after)))).all()
        return [(str(i), int(n)) for i, n in rows]

    async def run(self, *, now: float | None = None, limit: int | None = None) -> Archived:
        """Archive the logs due, oldest ended first (at most `limit` tried)."""
        done = Archived()
        tried = 0
        # left in the database in this run (changed meanwhile): tried again next pass
        unarchived: set[str] = set()
        while limit is None or tried < limit:
            now_ = time.time() if now is None else now
            take = self.batch_size if limit is None else min(self.batch_size, limit - tried)
            left_out = self._skipped | unarchived
            async with self.db.read() as conn:
                rows = (await conn.execute(
                    select(b.c.id, b.c.log_count).where(_due(now_, self.after))
                    .order_by(b.c.completed).limit(take + len(left_out)))).all()
            due = [(str(i), int(n)) for i, n in rows if i not in left_out][:take]
            if not due:
                break
            for group in _groups(due, self.batch_size * GROUP_BATCHES):
                tried += len(group)
                try:
                    moved = await self._archive_group(group)
                except ArchiveUnavailable as exc:
                    # the storage is down: the rows stay, the next pass tries again
                    log.warning("%s", exc)
                    done.failed += len(group)
                    return done
                for build_id, count in group:
                    if build_id not in moved:
                        unarchived.add(build_id)
                        done.failed += 1
                        continue
                    done.logs += 1
                    done.lines += count
                    done.bytes_written += moved[build_id]
        return done

    async def _archive_group(self, group: list[tuple[str, int]]) -> dict[str, int]:
        """Archive these logs: their objects written, then their rows let go of, together
        (one transaction records them, a few delete the rows). {build id: object size} of
        those archived."""
        # the objects written side by side: most of a write is the storage's wait (a
        # directory's fsync, an S3 PUT)
        sizes = await asyncio.gather(*(self._write_object(i, n) for i, n in group))
        written = {i: size for (i, _), size in zip(group, sizes, strict=True)
                   if size is not None}
        if not written:
            return {}
        counts = dict(group)
        stamp = time.time()
        moved: dict[str, int] = {}
        async with self.db.write() as conn:
            for build_id, size in written.items():
                if (await conn.execute(
                    update(b).where(b.c.id == build_id, b.c.log_archived_at.is_(None),
                                    b.c.log_count == counts[build_id])
                    .values(log_archived_at=stamp))).rowcount:
                    moved[build_id] = size
        # a log appended to meanwhile keeps its rows; its object is written again next pass
        await delete_log_rows(self.db, [(i, counts[i]) for i in moved],
                              batch_size=self.batch_size, pause=self.pause, whole=False)
        return moved

    async def _write_object(self, build_id: str, count: int) -> int | None:
        """Write one log's object from its rows; its size, or None when the rows do not
        match the count (it changed meanwhile, or rows are missing: left in the database)."""
        total, entries = await self.logs.read(build_id)
        if total != count or len(entries) != count:
            if total == count:  # rows missing: the numbering would shift; leave it alone
                log.warning("build %s: its log has %d rows for %d entries; left in the "
                            "database", build_id, len(entries), count)
                self._skipped.add(build_id)
            return None
        return await self.archive.write(build_id, entries)


def _groups(due: list[tuple[str, int]], rows: int) -> list[list[tuple[str, int]]]:
    """`due` in groups of about `rows` log rows (a longer log is a group of its own)."""
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    current_rows = 0
    for item in due:
        if current and current_rows + item[1] > rows:
            groups.append(current)
            current, current_rows = [], 0
        current.append(item)
        current_rows += item[1]
    if current:
        groups.append(current)
    return groups
