"""Waking the managers for a queued build, cancelling builds: what the API and CLI ask of
the build system (submitting goes through manager/admission.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from slipway import metrics
from slipway.domain.phases import Phase
from slipway.manager.keys import CANCEL_MARK_TTL, WAKE_KEY, cancel_key
from slipway.manager.phase_log import phase_entry
from slipway.orchestrator.base import Orchestrator, OrchestratorError
from slipway.store.interfaces import Store
from slipway.store.records import LogEntry
from slipway.tracing.build_tracing import BuildTracing, disabled

log = logging.getLogger("slipway.manager")


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    TOO_LATE = "too_late"  # pushing, or already final


class BuildControl:
    def __init__(
        self,
        store: Store,
        orchestrator: Orchestrator,
        *,
        local_wakeup: Callable[[], None] | None = None,
        tracing: BuildTracing | None = None,
    ) -> None:
        self.store = store
        self.orchestrator = orchestrator
        self._local_wakeup = local_wakeup
        # the builds' traces (the admission's spans, the API's reads)
        self.tracing = tracing or disabled()

    def attach_scheduler(self, wakeup: Callable[[], None]) -> None:
        self._local_wakeup = wakeup

    async def wake_managers(self) -> None:
        """A build was queued (manager/admission.py): schedule at once."""
        if self._local_wakeup is not None:
            self._local_wakeup()
        # every manager (other processes too) subscribes to WAKE_KEY: with several managers
        # the one in this process may be full while another has room
        try:
            await self.orchestrator.set(WAKE_KEY, str(time.time()))
        except Exception as exc:  # stored and queued: the schedulers' timers still find it
            log.warning("could not wake the build managers (%s); the build waits for "
                        "their next queue check", exc)

    async def cancel(self, build_id: str) -> CancelOutcome:
        store = self.store
        async with store.write() as conn:
            record = await store.builds.get(build_id, conn)
            if record is None:
                return CancelOutcome.NOT_FOUND
            moved = await store.builds.move_phase(
                conn,
                build_id,
                Phase.CANCELLED,
                log=[LogEntry("Build cancelled by user", None, {}), phase_entry(Phase.CANCELLED)],
                completed=time.time(),
            )
            if not moved:
                return CancelOutcome.TOO_LATE
            await store.queue.remove_for_build(conn, build_id)
        if record.job_id is None:  # no attempt runs: no manager ends its trace
            self.tracing.finish(build_id, record.started, Phase.CANCELLED.value)
        # counted here, where the build became final (the API's process, which may run no
        # manager); the attempt's end, in whichever manager held it, does not count it
        metrics.BUILDS_FINISHED.labels(Phase.CANCELLED.value).inc()
        # the manager holding the job (this process or another) stops its worker
        try:
            await self.orchestrator.set(cancel_key(build_id), "1", expiration=CANCEL_MARK_TTL)
        except OrchestratorError as exc:
            # cancelled all the same (the database says so): once the orchestrator is
            # back, the manager of its attempt finds the cancel there and stops the worker
            # (manager/key_loss.py)
            log.warning("build %s cancelled; its worker is stopped once the orchestrator "
                        "is back (%s)", build_id, exc)
        return CancelOutcome.CANCELLED
