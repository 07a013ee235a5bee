"""A cheap, frequent look at Quay's queue for new items, so that a build queued in Quay
reaches an executor within a fraction of a second (docs/quay-mode.md).

Quay's web app cannot notify slipway, and slipway does not change Quay's schema (no
trigger, no LISTEN/NOTIFY). Instead each manager reads the highest `queueitem.id` every
QUAY_QUEUE_WATCH_INTERVAL: one index-only look at the primary key's last entry, the same
cost however long the table. When it moved, Quay put an item (of any queue: a build's
notifications too), and the scheduler is woken to claim at once. The scheduler's own
look every POLL_INTERVAL_S (1 s) stays for what an id does not show: an item of another
consumer given back or whose lease ran out, or an insert committed after a later one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from slipway.store.database import Database

log = logging.getLogger("slipway.quay")

STOP_GRACE_S = 5.0
# the primary key's last entry: an index-only scan of one page (Quay's schema: id SERIAL)
NEWEST = "SELECT coalesce(max(id), 0) FROM queueitem"


class QueueWatch:
    """Wakes `wake` whenever Quay's `queueitem` has a new row; looks every `interval`."""

    def __init__(self, db: Database, wake: Callable[[], None], interval: float) -> None:
        self.db = db
        self.wake = wake
        self.interval = interval
        self.looks = 0  # how many times it read the table (the benchmark's count)
        self._last: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def look(self) -> bool:
        """Read the highest id (on a connection of its own); True, and the scheduler
        woken, when it moved."""
        async with self.db.read() as conn:
            return await self._look_on(conn)

    async def _look_on(self, conn: AsyncConnection) -> bool:
        newest = int((await conn.exec_driver_sql(NEWEST)).scalar() or 0)
        self.looks += 1
        moved = self._last is not None and newest != self._last
        self._last = newest
        if moved:
            self.wake()
        return moved

    async def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                # one connection held for every look: a pool checkout each time cost
                # three times the CPU, and the same statement on one connection is
                # prepared once (psycopg) rather than planned at every look
                async with self.db.held_reads() as conn:
                    while not self._stopping.is_set():
                        await self._look_on(conn)
                        if failing:
                            log.warning("watching Quay's queue works again")
                        failing = False
                        await self._pause()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the scheduler's own poll still finds new builds
                if not failing:
                    log.warning("watching Quay's queue failed (%s); new builds wait for the "
                                "next poll of the queue", type(exc).__name__)
                failing = True
                await self._pause()

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._stopping.wait()
