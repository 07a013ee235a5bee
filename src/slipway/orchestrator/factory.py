"""Build the orchestrator a manager config asks for: Redis with ORCHESTRATOR, else memory."""

from __future__ import annotations

from slipway.config.models import ManagerConfig
from slipway.orchestrator.base import Orchestrator, UnpublishedEvents
from slipway.orchestrator.memory import MemoryOrchestrator


def create_orchestrator(
    manager_config: ManagerConfig | None, unpublished: UnpublishedEvents | None = None
) -> Orchestrator:
    """The orchestrator is returned unstarted; None (no manager runs here): in memory.
    `unpublished`: write events no process acts on (only a shared orchestrator publishes
    any)."""
    if manager_config is None:
        return MemoryOrchestrator("")
    prefix = manager_config.ORCHESTRATOR_PREFIX
    redis_config = manager_config.ORCHESTRATOR
    if redis_config is None:
        return MemoryOrchestrator(prefix)
    from slipway.orchestrator.redis import RedisOrchestrator  # redis only when configured

    return RedisOrchestrator(redis_config, prefix=prefix, unpublished=unpublished)
