"""Build the orchestrator a manager config asks for: Redis with ORCHESTRATOR, else memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.orchestrator.base import Orchestrator, UnpublishedEvents
from slipway.orchestrator.memory import MemoryOrchestrator


def _field(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def create_orchestrator(
    manager_config: Any, unpublished: UnpublishedEvents | None = None
) -> Orchestrator:
    """`manager_config`: config.models.ManagerConfig (or anything with ORCHESTRATOR and
    ORCHESTRATOR_PREFIX). The orchestrator is returned unstarted. `unpublished`: write
    events no process acts on (only a shared orchestrator publishes any)."""
    prefix = _field(manager_config, "ORCHESTRATOR_PREFIX") or ""
    redis_config = _field(manager_config, "ORCHESTRATOR")
    if redis_config is None:
        return MemoryOrchestrator(prefix)
    from slipway.orchestrator.redis import RedisOrchestrator  # redis only when configured

    return RedisOrchestrator(redis_config, prefix=prefix, unpublished=unpublished)
