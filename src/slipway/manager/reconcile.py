"""Reconciling this manager's view with the shared state, for what no event announces.

- At start: job keys whose build has ended or moved on to another attempt (left by a
  manager that died) are removed and their workers stopped; deadline keys without a job
  are removed.
- Periodically, first: whether the orchestrator lost its keys (its epoch changed: Redis
  restarted without its data, or failed over without it), or was unreachable since the
  last pass; if so the keys of the attempts this manager holds are put back from its
  memory and the database (manager/key_loss.py, `Attempts.put_back_keys`), so their
  builds go on.
- Then: an attempt this manager tracks whose job key vanished without an end (its
  DELETE event was missed during an outage, or a failover lost a recent write) is ended
  and retried, or simply forgotten when the build has moved on, so it neither stays
  stuck nor holds capacity. A key must be missing on two passes in a row: an end in
  progress elsewhere deletes the key a moment before it writes the outcome.

Attempts whose manager died are found by the others through job-key expiry, and, when
the key itself was lost too, through the queue lease running out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from slipway.backoff import Backoff
from slipway.domain.results import AttemptEnd
from slipway.manager.attempts import EndReason
from slipway.manager.background import finish_or_cancel
from slipway.manager.context import ManagerContext
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.keys import DEADLINE_PREFIX, JOB_PREFIX, job_key
from slipway.orchestrator.base import OrchestratorError

log = logging.getLogger("slipway.manager")

MAX_INTERVAL = 10.0
MAX_RETRY_PAUSE = 30.0  # longest pause while the orchestrator or database is down
STOP_GRACE = 10.0


class Reconciler:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx
        self._missing: set[str] = set()  # tracked job ids whose key was missing last pass
        self._put_backs = 0  # the key-loss watch's put-backs, as of the last pass
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._poked = asyncio.Event()  # a pass now: stopping, or events were missed

    @property
    def interval(self) -> float:
        return max(0.5, min(MAX_INTERVAL, self.ctx.heartbeat_expiry / 2))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def events_missed(self) -> None:
        """The orchestrator's events of a while may be lost (its subscription was down): a
        cancel or an end written meanwhile by another process is found by a pass now,
        which puts back what the outage swallowed (manager/key_loss.py)."""
        self.ctx.attempts.key_loss.outage_seen()
        self._poked.set()

    async def stop(self) -> None:
        """Let a pass in progress finish (see Scheduler.stop for why not cancel)."""
        if self._task is not None:
            self._stopping = True
            self._poked.set()
            await finish_or_cancel(self._task, STOP_GRACE)

    async def _run(self) -> None:
        delay = self.interval
        # Redis or PostgreSQL down: try again, more slowly
        backoff = Backoff(2 * self.interval, MAX_RETRY_PAUSE)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._poked.wait()
            self._poked.clear()
            if self._stopping:
                return
            try:
                await self.check_tracked()
                delay = self.interval
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, OrchestratorError):
                    self.ctx.attempts.key_loss.outage_seen()
                log.warning("reconciling tracked builds failed (%s); retrying", exc)
                delay = backoff.next()

    async def check_tracked(self) -> None:
        ctx = self.ctx
        key_loss = ctx.attempts.key_loss
        await key_loss.check()  # keys lost (or an outage): put back before looking
        if key_loss.put_backs != self._put_backs:
            # what was missing before the put-back is not missing twice
            self._put_backs = key_loss.put_backs
            self._missing = set()
        missing_now: set[str] = set()
        # Every job key in one scan, not a read per tracked job: the reads would grow with
        # the builds tracked. A key created while the scan runs may be missed; it counts
        # as missing only on a second pass.
        live = await ctx.orchestrator.get_prefixed(JOB_PREFIX)
        for job in ctx.attempts.held():
            job_id = job.job_id
            if ctx.attempts.is_ending(job_id) or job_key(job_id) in live:
                continue
            if job_id not in self._missing:
                missing_now.add(job_id)
                continue
            await self._lost(job)
        self._missing = missing_now

    async def _lost(self, job: JobState) -> None:
        ctx = self.ctx
        if job.job_id not in ctx.attempts or ctx.attempts.is_ending(job.job_id):
            return
        record = await ctx.store.builds.get(job.build_id)
        if record is None or record.phase.is_final or record.job_id != job.job_id:
            # ended normally; we only missed the event (or it never got past scheduling)
            ctx.attempts.forget(job.job_id)
            return
        end = (
            AttemptEnd.HEARTBEAT_LOST
            if job.stage is JobStage.RUNNING
            else AttemptEnd.NEVER_REGISTERED
        )
        log.warning("job %s of build %s lost its orchestrator key; ending it (%s)",
                    job.job_id, job.build_id, end.value)
        await ctx.attempts.end(
            job, EndReason.RECONCILE, end,
            detail="the orchestrator lost the job (Redis restarted?)", key_gone=True,
        )

    async def at_start(self) -> None:
        """Remove what managers that are gone left behind in the orchestrator."""
        ctx = self.ctx
        jobs = await ctx.orchestrator.get_prefixed(JOB_PREFIX)
        removed = 0
        for raw in jobs.values():
            job = JobState.loads(raw)
            if job.job_id in ctx.attempts or job.stage is JobStage.SCHEDULING:
                continue  # a scheduling key is young and expires soon by itself
            record = await ctx.store.builds.get(job.build_id)
            if record is not None and not record.phase.is_final and record.job_id == job.job_id:
                continue  # a live attempt (of any manager): its expiry handles it
            if await ctx.attempts.end_stale(job.job_id, job):
                removed += 1
        live = set(await ctx.orchestrator.get_prefixed(JOB_PREFIX))
        for key in await ctx.orchestrator.get_prefixed(DEADLINE_PREFIX):
            job_id = key[len(DEADLINE_PREFIX):]
            if job_key(job_id) not in live and await ctx.orchestrator.delete(key):
                removed += 1
        if removed:
            log.info("removed %d stale orchestrator key(s) left by earlier managers", removed)
