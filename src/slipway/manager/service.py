"""One manager process: wires the scheduler, event handlers and worker calls together."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from slipway.config.models import AppConfig, ManagerConfig
from slipway.executors.base import Executor
from slipway.manager.context import ManagerContext
from slipway.manager.events import EventHandlers
from slipway.manager.keys import WAKE_KEY
from slipway.manager.reconcile import Reconciler
from slipway.manager.scheduler import Scheduler
from slipway.orchestrator.base import Orchestrator
from slipway.store.interfaces import Store
from slipway.tokens.jwt import TokenService
from slipway.tracing.build_tracing import BuildTracing

# how long in-flight work (attempt starts and ends, worker calls) may take to finish at
# shutdown before it is cancelled
SHUTDOWN_GRACE = 5.0

log = logging.getLogger("slipway.manager")


def new_manager_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class BuildManager:
    def __init__(
        self,
        *,
        app_config: AppConfig,
        manager_config: ManagerConfig,
        store: Store,
        orchestrator: Orchestrator,
        executors: list[Executor],
        tokens: TokenService,
        manager_id: str | None = None,
        tracing: BuildTracing | None = None,
    ) -> None:
        self.ctx = ManagerContext.create(
            app_config=app_config,
            manager_config=manager_config,
            store=store,
            orchestrator=orchestrator,
            executors=executors,
            tokens=tokens,
            manager_id=manager_id or new_manager_id(),
            wake_scheduler=self._wake_scheduler,
            tracing=tracing,
        )
        self.scheduler = Scheduler(self.ctx)
        self.events = EventHandlers(self.ctx)
        self.reconciler = Reconciler(self.ctx)
        self._shut_down = False

    def _wake_scheduler(self) -> None:
        self.scheduler.wake()

    def _events_missed(self) -> None:
        """The orchestrator's events were down a while: a cancel, an end or a wake-up
        published meanwhile is looked for again."""
        self.reconciler.events_missed()
        self.scheduler.wake()

    @property
    def manager_id(self) -> str:
        return self.ctx.manager_id

    @property
    def sole_manager(self) -> bool:
        """Whether no other manager can hold this store's builds: the orchestrator is in
        this process's memory (no ORCHESTRATOR), which only one manager process may use
        (docs/configuration.md). Its attempts then die with it, so a restarted sole
        manager knows the builds still under way in the store are its previous life's."""
        return self.ctx.manager_config.ORCHESTRATOR is None

    async def start(self) -> None:
        self.events.subscribe()
        self.ctx.orchestrator.on_events_missed(self._events_missed)
        try:
            # the orchestrator's data set as this manager finds it: a later change means
            # its keys were lost (manager/key_loss.py)
            await self.ctx.attempts.key_loss.check()
        except Exception as exc:  # the reconciler's first pass takes it instead
            log.warning("could not read the orchestrator's epoch at start: %s", exc)
        try:
            await self.reconciler.at_start()
        except Exception as exc:  # an outage must not keep the manager from starting
            log.warning("could not clean up stale orchestrator keys at start: %s", exc)
        for executor in self.ctx.executors:
            await executor.open()
        if self.sole_manager:
            await self._take_back_orphans()
        self.reconciler.start()
        self.scheduler.start()
        self.scheduler.wake()
        log.info("build manager %s started with %d executor(s)", self.manager_id,
                 len(self.ctx.executors))

    async def _take_back_orphans(self) -> None:
        """The builds this manager ran before it was killed go back to the queue now, not
        once their queue lease runs out (a shared orchestrator keeps a dead manager's
        job keys instead, and its workers may go on with another manager)."""
        try:
            taken = await self.ctx.attempts.take_back_orphans()
        except Exception as exc:  # an outage: their queue leases run out instead
            log.warning("could not take back the builds of this manager's previous run: "
                        "%s; they are retried once their queue lease runs out", exc)
            return
        if taken:
            log.info("took back %d build(s) left running by this manager's previous run",
                     taken)

    @property
    def running(self) -> int:
        """Attempts this manager holds (shown when it stops)."""
        return len(self.ctx.attempts)

    async def shutdown(self) -> None:
        """Clean stop (SIGTERM): stop our workers, record their attempts as given back
        (`manager_shutdown`, not counted against the build's tries) and put their builds
        back in the queue, so another manager (or our next start) runs them. Once: a
        second call finds nothing left to do."""
        if self._shut_down:
            return
        self._shut_down = True
        self.scheduler.paused = True
        await self.scheduler.stop()
        await self.reconciler.stop()
        await self.ctx.attempts.shut_down()
        try:
            await self.ctx.orchestrator.set(WAKE_KEY, "shutdown")  # other managers: take them
        except Exception:
            log.warning("could not wake other managers")
        await self.ctx.background.finish(SHUTDOWN_GRACE)
        await self.ctx.log_writer.close()
        await self.ctx.close_groups()
        await asyncio.gather(*(executor.close() for executor in self.ctx.executors))

    def hurry(self) -> None:
        """A forced stop (a second signal): workers are killed without waiting for them."""
        for executor in self.ctx.executors:
            executor.hurry()
