"""Noticing that the orchestrator lost its keys, so that this manager puts back those of
the attempts it holds (docs/operations.md, "Redis").

A Redis restarted without persistence, or a replica promoted without the latest writes,
comes back without the job keys, and no event says so. Left alone, a worker's next
heartbeat would find its job gone and stop, and the reconciler would end every attempt
as lost. Instead whoever first needs to know (a worker call that finds its job key
missing, the reconciler's pass) asks for the orchestrator's epoch
(`Orchestrator.epoch`). When it changed, the attempts' keys are put back from this
process's memory and the database (`Attempts.put_back_keys`) before the answer is given,
so the call that asked goes on as if nothing had happened.

An outage without a loss (Redis unreachable for a while, its keys kept) may still have
swallowed writes: a build cancelled in the database meanwhile has no cancel key. So the
first look after an outage puts back what is missing the same way, whatever the epoch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from slipway.orchestrator.base import Orchestrator, OrchestratorError

log = logging.getLogger("slipway.manager")


class KeyLoss:
    def __init__(
        self,
        orchestrator: Orchestrator,
        put_back: Callable[[], Awaitable[int]],
        *,
        grace: float,
    ) -> None:
        """`put_back` puts back the keys of the attempts held here, and says how many it
        wrote. `grace`: how long after a loss a missing job key of another manager's
        attempt may still be on its way back (that manager has not looked yet)."""
        self._orchestrator = orchestrator
        self._put_back = put_back
        self._grace = grace
        self._known: str | None = None  # the epoch this manager's keys were written in
        self._lost_at: float | None = None  # monotonic
        self._outage = False
        self._looking: asyncio.Task[None] | None = None
        self.put_backs = 0  # completed put-backs, so a pass can tell one happened

    def outage_seen(self) -> None:
        """The orchestrator could not be reached: the next look puts back what is missing
        even if its epoch is unchanged."""
        self._outage = True

    def lately(self) -> bool:
        """Whether a loss was found within the grace period."""
        return self._lost_at is not None and time.monotonic() - self._lost_at < self._grace

    async def check(self) -> bool:
        """Look at the orchestrator's epoch (callers at the same moment share one look) and
        put the keys back if they were lost, or after an outage. True when a loss was
        found lately: a job key still missing may belong to another manager's attempt on
        its way back. Raises OrchestratorError while the orchestrator is unreachable."""
        looking = self._looking
        if looking is None or looking.done():
            looking = self._looking = asyncio.get_running_loop().create_task(self._look())
            # a caller cancelled meanwhile leaves the look to finish on its own
            looking.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.shield(looking)
        return self.lately()

    async def _look(self) -> None:
        try:
            epoch = await self._orchestrator.epoch()
        except OrchestratorError:
            self._outage = True
            raise
        if self._known is None:
            self._known = epoch  # the first look: the data set this manager starts in
            return
        lost = epoch != self._known
        if not lost and not self._outage:
            return
        outage, self._outage = self._outage, False
        if lost:
            self._lost_at = time.monotonic()
            log.warning("the orchestrator lost its keys (Redis restarted or failed over "
                        "without them); putting back those of the attempts this manager "
                        "runs")
        try:
            restored = await self._put_back()
        except BaseException:
            self._outage = self._outage or outage  # try again at the next look
            raise
        # only now: a put-back cut short by a database outage is tried again
        self._known = epoch
        self.put_backs += 1
        if restored or lost:
            log.warning("put back the orchestrator keys of %d attempt(s)", restored)
