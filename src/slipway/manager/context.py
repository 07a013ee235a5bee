"""What the parts of one manager process share: plain dependencies, wired once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from slipway.config.models import AppConfig, ManagerConfig
from slipway.executors.base import Executor
from slipway.manager.attempts import Attempts
from slipway.manager.background import Background
from slipway.manager.build_reads import BuildReads
from slipway.manager.log_sequences import LogSequences
from slipway.manager.log_writer import LogWriter
from slipway.orchestrator.base import Orchestrator
from slipway.store.interfaces import SharedWrites, Store
from slipway.store.records import BuildRecord
from slipway.tokens.jwt import TokenService
from slipway.tracing.build_tracing import BuildTracing, disabled


@dataclass(frozen=True)
class ManagerContext:
    app_config: AppConfig
    manager_config: ManagerConfig
    store: Store[Any]
    orchestrator: Orchestrator
    executors: list[Executor]
    tokens: TokenService
    manager_id: str
    # the scheduler's wake-up (another manager asks, or capacity freed up)
    wake_scheduler: Callable[[], None]
    # the attempts this process holds, and the one writer of attempt state
    attempts: Attempts
    background: Background
    # build records read by the hot path
    reads: BuildReads
    # the hot path's short write transactions (attempt begun, worker recorded, registered)
    shared_writes: SharedWrites
    log_writer: LogWriter
    # the builds' spans (tracing/build_tracing.py)
    tracing: BuildTracing = field(default_factory=disabled)
    # each job's last log line taken, across its streams (a re-send is not stored twice)
    log_sequences: LogSequences = field(default_factory=LogSequences)

    @classmethod
    def create(
        cls,
        *,
        app_config: AppConfig,
        manager_config: ManagerConfig,
        store: Store[Any],
        orchestrator: Orchestrator,
        executors: list[Executor],
        tokens: TokenService,
        manager_id: str,
        wake_scheduler: Callable[[], None],
        tracing: BuildTracing | None = None,
    ) -> ManagerContext:
        tracing = tracing or disabled()
        background = Background()
        reads = BuildReads(store)
        shared_writes = store.shared_writes()
        attempts = Attempts(
            app_config=app_config, manager_config=manager_config, store=store,
            shared_writes=shared_writes, reads=reads, orchestrator=orchestrator,
            executors=executors, tokens=tokens, manager_id=manager_id,
            background=background, wake_scheduler=wake_scheduler, tracing=tracing,
        )
        return cls(
            app_config=app_config, manager_config=manager_config, store=store,
            orchestrator=orchestrator, executors=executors, tokens=tokens,
            manager_id=manager_id, wake_scheduler=wake_scheduler,
            attempts=attempts, background=background, reads=reads,
            shared_writes=shared_writes, log_writer=LogWriter(store), tracing=tracing,
        )

    async def build(self, build_id: str) -> BuildRecord | None:
        return await self.reads.get(build_id)

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        return self.background.spawn(coro, what)

    async def close_groups(self) -> None:
        """Fail what is still waiting in the shared queries (the manager is stopping)."""
        await self.attempts.close()
        await self.reads.close(RuntimeError("the build manager is stopping"))
        await self.shared_writes.close()

    @property
    def heartbeat_expiry(self) -> float:
        return float(self.manager_config.HEARTBEAT_EXPIRY)
