"""What Quay's web app and UI read of a running build, kept up from slipway's side, and
what they write that slipway must see (docs/quay-contract.md):

- every log entry of slipway's record of a Quay build is copied to BUILDLOGS_REDIS
  (`builds/<uuid>/logs`, Quay's entry shape: quay/buildlogs.py), in order, so Quay's
  build log view is live;
- a cancel from Quay's UI or API (it deletes the queue item and writes the phase
  `cancelled`, since Quay's canceller is a no-op for slipway) is seen within
  PASS_INTERVAL_S and handed to slipway's own cancel, which stops the worker.

One pass at a time across all managers on the database (a PostgreSQL advisory lock
taken for the pass): what has already been copied is the Redis list's length, so a
pass of any manager continues where the last one stopped, and no entry is copied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Integer, String, column, func, or_, select, values

from slipway.domain.phases import FINAL_PHASES, Phase
from slipway.quay.buildlogs import QuayBuildLogs, logs_key
from slipway.quay.builds import CANCELLED, QuayBuilds
from slipway.store.database import Database
from slipway.store.records import LogEntry
from slipway.store.schema import build_logs as logs
from slipway.store.schema import builds as b

log = logging.getLogger("slipway.quay")

# how often the mirror looks (a cancel from Quay reaches the worker within this, plus the
# orchestrator's cancel event)
PASS_INTERVAL_S = 0.25
# ended builds whose last entries are still copied for this long after they end
ENDED_GRACE_S = 120.0
# entries copied per build and pass, at most
ENTRIES_PER_PASS = 5000
_LOCK_NAME = "slipway-quay-mirror"


class QuayMirror:
    def __init__(
        self,
        db: Database,
        quay_logs: QuayBuildLogs,
        quay_builds: QuayBuilds,
        cancel: Callable[[str], Awaitable[Any]],
    ) -> None:
        self.db = db
        self.quay_logs = quay_logs
        self.quay_builds = quay_builds
        self.cancel = cancel
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # build -> the log count this process copied up to: a build whose count has not
        # moved since needs no look at Redis (what another manager copies moves it on)
        self._copied: dict[str, int] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(10):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        with contextlib.suppress(Exception):
            # the last entries of builds that just ended, after any pass running elsewhere
            await self.pass_once(wait=True)

    async def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                await self.pass_once()
                if failing:
                    log.warning("copying build logs to BUILDLOGS_REDIS works again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("copying build logs to BUILDLOGS_REDIS / reading Quay's "
                                "cancels failed (%s: %s); trying again",
                                type(exc).__name__, exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PASS_INTERVAL_S):
                    await self._stopping.wait()

    async def pass_once(self, *, wait: bool = False) -> None:
        lock = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
        async with self.db.write() as conn:
            got = await conn.scalar(select(lock(func.hashtextextended(_LOCK_NAME, 0))))
            if not wait and not got:
                return  # another manager's pass runs
            since = time.time() - ENDED_GRACE_S
            rows = (await conn.execute(
                select(b.c.id, b.c.phase, b.c.log_count).where(or_(
                    b.c.phase.not_in([p.value for p in FINAL_PHASES]),
                    b.c.completed >= since,
                ))
            )).all()
            if not rows:
                return
            await self._cancels([r.id for r in rows if Phase(r.phase) not in FINAL_PHASES])
            counts = {str(r.id): int(r.log_count) for r in rows}
            self._copied = {k: v for k, v in self._copied.items() if k in counts}
            await self._copy({k: v for k, v in counts.items() if self._copied.get(k) != v})

    async def _cancels(self, running: list[str]) -> None:
        if not running:
            return
        phases = await self.quay_builds.phases(running)
        for build_id in running:
            if phases.get(build_id) == CANCELLED:
                log.info("build %s was cancelled in Quay; stopping it", build_id)
                await self.cancel(build_id)

    async def _copy(self, counts: dict[str, int]) -> None:
        pipe = self.quay_logs.redis.pipeline(transaction=False)
        ids = list(counts)
        for build_id in ids:
            pipe.llen(logs_key(build_id))
        copied = dict(zip(ids, (int(n) for n in await pipe.execute()), strict=True))
        behind = {build_id: copied[build_id] for build_id, total in counts.items()
                  if total > copied[build_id]}
        if behind:
            batches = await self._entries_from(behind)
            if batches:
                await self.quay_logs.append_many(batches)
            for build_id, start in behind.items():
                copied[build_id] = start + len(batches.get(build_id, ()))
        for build_id, total in counts.items():
            if copied[build_id] >= total:
                self._copied[build_id] = total

    async def _entries_from(self, starts: dict[str, int]) -> dict[str, list[LogEntry]]:
        """Each build's log entries from its start on (ENTRIES_PER_PASS at most), in one
        query for all builds."""
        wanted = values(column("want_id", String), column("want_from", Integer),
                        name="wanted").data(sorted(starts.items()))
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(logs.c.build_id, logs.c.message, logs.c.type, logs.c.data)
                .join(wanted, logs.c.build_id == wanted.c.want_id)
                .where(logs.c.idx >= wanted.c.want_from,
                       logs.c.idx < wanted.c.want_from + ENTRIES_PER_PASS)
                .order_by(logs.c.build_id, logs.c.idx)
            )).all()
        batches: dict[str, list[LogEntry]] = {}
        for row in rows:
            batches.setdefault(str(row.build_id), []).append(
                LogEntry(row.message, row.type, row.data or {}))
        return batches
