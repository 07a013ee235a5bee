"""What every part of one manager process shares."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slipway.config.models import AppConfig, ManagerConfig
from slipway.executors.base import Executor
from slipway.group_calls import GroupedCalls
from slipway.manager.attempts import Attempts
from slipway.manager.log_writer import LogWriter
from slipway.manager.refusals import CallRefused
from slipway.orchestrator.base import Orchestrator
from slipway.store.interfaces import SharedWrites, Store
from slipway.store.records import BuildRecord
from slipway.tokens.jwt import TokenService

log = logging.getLogger("slipway.manager")

LEASE_EXTENSION_BATCH = 500  # queue items per UPDATE
LEASE_EXTENSION_LINGER = 0.02  # a lease has tens of seconds left when it is pushed out
BUILD_LOOKUP_BATCH = 200  # build records per SELECT


@dataclass
class ManagerContext:
    app_config: AppConfig
    manager_config: ManagerConfig
    store: Store
    orchestrator: Orchestrator
    executors: list[Executor]
    tokens: TokenService
    manager_id: str
    wake_scheduler: Callable[[], None] = lambda: None
    # the attempts this process holds, and the one writer of attempt state
    attempts: Attempts = field(init=False)
    # builds a user cancelled (from cancel events), so any manager can refuse heartbeats
    cancelled: OrderedDict[str, None] = field(default_factory=OrderedDict)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    log_writer: LogWriter = field(init=False)
    # queue-lease extensions of heartbeats: (queue item id, seconds) -> still processing
    lease_extensions: GroupedCalls[tuple[int, float], bool] = field(init=False)
    # the hot path's short write transactions (attempt begun, worker recorded, registered)
    shared_writes: SharedWrites = field(init=False)
    # build records read by the hot path, by id (see `build`)
    build_lookups: GroupedCalls[str, BuildRecord | None] = field(init=False)

    def __post_init__(self) -> None:
        self.attempts = Attempts(self)
        self.log_writer = LogWriter(self.store)
        self.lease_extensions = GroupedCalls(
            self.store.queue.extend_processing_many, LEASE_EXTENSION_BATCH, LEASE_EXTENSION_LINGER
        )
        self.shared_writes = self.store.shared_writes()
        self.build_lookups = GroupedCalls(self.store.builds.get_each, BUILD_LOOKUP_BATCH)

    async def build(self, build_id: str) -> BuildRecord | None:
        """The build's record. On PostgreSQL the reads that arrive while one is out share
        the next query (a round trip each would be paid on every build's start);
        SQLite reads at once on the loop's thread, so there is nothing to share."""
        if not self.store.shares_lookups:
            return await self.store.builds.get(build_id)
        return await self.build_lookups.call(build_id)

    async def close_groups(self) -> None:
        """Fail what is still waiting in the shared queries (the manager is stopping)."""
        stopping = RuntimeError("the build manager is stopping")
        await self.lease_extensions.close(stopping)
        await self.build_lookups.close(stopping)
        await self.shared_writes.close()

    def executor(self, name: str | None) -> Executor | None:
        return next((e for e in self.executors if e.name == name), None)

    def spawn(self, coro: Any, what: str) -> asyncio.Task[Any]:
        """Run `coro` in the background, keeping a reference and logging its failure."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.background.discard(t)
            exc = None if t.cancelled() else t.exception()
            # CallRefused is an answer to the worker, not a failure
            if exc is not None and not isinstance(exc, CallRefused):
                log.error("%s failed", what, exc_info=exc)

        task.add_done_callback(done)
        return task

    def remember_cancelled(self, build_id: str) -> None:
        self.cancelled[build_id] = None
        while len(self.cancelled) > 10_000:
            self.cancelled.popitem(last=False)

    @property
    def heartbeat_expiry(self) -> float:
        return float(self.manager_config.HEARTBEAT_EXPIRY)
