"""Reacting to orchestrator events: expired jobs, deadlines, cancellations, wake-ups."""

from __future__ import annotations

import logging

from slipway.domain.build_limits import MACHINE_MAX_TIME, BuildLimit, timed_out_message
from slipway.domain.results import AttemptEnd
from slipway.manager.attempts import EndReason
from slipway.manager.context import ManagerContext
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.keys import (
    ACTED_ON,
    CANCEL_PREFIX,
    DEADLINE_PREFIX,
    JOB_PREFIX,
    WAKE_KEY,
    job_key,
)
from slipway.orchestrator.base import KeyEvent, KeyEventKind

log = logging.getLogger("slipway.manager")


class EventHandlers:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx

    def subscribe(self) -> None:
        # (the kinds of keys.ACTED_ON only: writers publish no others)
        orch = self.ctx.orchestrator
        orch.subscribe(JOB_PREFIX, self.on_job_event, ACTED_ON[JOB_PREFIX])
        orch.subscribe(DEADLINE_PREFIX, self.on_deadline_event, ACTED_ON[DEADLINE_PREFIX])
        orch.subscribe(CANCEL_PREFIX, self.on_cancel_event, ACTED_ON[CANCEL_PREFIX])
        orch.subscribe(WAKE_KEY, self.on_wake_event, ACTED_ON[WAKE_KEY])

    async def on_job_event(self, event: KeyEvent) -> None:
        job_id = event.key[len(JOB_PREFIX):]
        if event.kind is KeyEventKind.DELETE:
            # ended by another manager (or by us): stop counting it against our capacity
            # (every manager hears every job's DELETE: only one we held wakes our scheduler)
            self.ctx.attempts.forget(job_id, always_wake=False)
            return
        if event.value is None:
            return
        job = JobState.loads(event.value)
        record = await self.ctx.store.builds.get(job.build_id)
        if record is not None and record.phase.is_final:
            end = AttemptEnd.CANCELLED
        elif job.stage is JobStage.RUNNING:
            end = AttemptEnd.HEARTBEAT_LOST
        else:
            end = AttemptEnd.NEVER_REGISTERED
        log.info("job %s of build %s expired (%s)", job_id, job.build_id, end.value)
        await self.ctx.attempts.end(job, EndReason.EXPIRY, end, key_gone=True)

    async def on_deadline_event(self, event: KeyEvent) -> None:
        if event.value is None:
            return
        job = JobState.loads(event.value)
        raw = await self.ctx.orchestrator.get(job_key(job.job_id))
        if raw is None:
            return  # ended already
        current = JobState.loads(raw)
        # the deadline key holds the limit it was set with (Attempts.running); a key
        # written before jobs carried one was MACHINE_MAX_TIME's
        if job.timeout is not None:
            limit = BuildLimit(job.timeout, job.timeout_set_by or MACHINE_MAX_TIME)
        else:
            limit = BuildLimit(int(self.ctx.manager_config.MACHINE_MAX_TIME), MACHINE_MAX_TIME)
        await self.ctx.attempts.end(
            current, EndReason.EXPIRY, AttemptEnd.TIMED_OUT, detail=timed_out_message(limit)
        )

    async def on_cancel_event(self, event: KeyEvent) -> None:
        await self.ctx.attempts.cancelled(event.key[len(CANCEL_PREFIX):])

    async def on_wake_event(self, event: KeyEvent) -> None:
        self.ctx.wake_scheduler()
