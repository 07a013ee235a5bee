"""Executor kinds: which exist, and how to build one from its config."""

from __future__ import annotations

import importlib
from typing import Any

from slipway.executors.base import Executor

# EXECUTOR value -> "module:Class". Quay's `popen` is slipway's `local`.
_IMPLEMENTATIONS: dict[str, str] = {
    "local": "slipway.executors.local:LocalExecutor",
    "popen": "slipway.executors.local:LocalExecutor",
    "kubernetes": "slipway.executors.kubernetes:KubernetesExecutor",
    "kubernetesPodman": "slipway.executors.kubernetes:KubernetesExecutor",
    "ec2": "slipway.executors.ec2:EC2Executor",
}

KNOWN_KINDS = tuple(_IMPLEMENTATIONS)


def _load(kind: str) -> type[Executor] | None:
    target = _IMPLEMENTATIONS.get(kind)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    cls = getattr(module, class_name, None)
    return cls if isinstance(cls, type) and issubclass(cls, Executor) else None


def implemented_kinds() -> list[str]:
    """Kinds whose implementation ships in this version of slipway."""
    return [kind for kind in KNOWN_KINDS if _load(kind) is not None]


def create_executor(config: Any, manager_id: str) -> Executor:
    cls = _load(config.EXECUTOR)
    if cls is None:
        raise ValueError(
            f"executor kind {config.EXECUTOR!r} is not implemented in this version of slipway; "
            f"available: {', '.join(implemented_kinds())}"
        )
    return cls(config, manager_id)
