"""The executors slipway has: their config models, listed once, and how to create an
executor from a validated config. Each model names its EXECUTOR values and the class that
runs them (executors/config_base.py)."""

from __future__ import annotations

import importlib
from typing import Any

from slipway.executors.base import Executor
from slipway.executors.config_base import ExecutorConfigBase
from slipway.executors.ec2.config import EC2ExecutorConfig
from slipway.executors.kubernetes.config import KubernetesExecutorConfig
from slipway.executors.local.config import LocalExecutorConfig

# in the order error messages list them
MODELS: tuple[type[ExecutorConfigBase], ...] = (
    LocalExecutorConfig,
    KubernetesExecutorConfig,
    EC2ExecutorConfig,
)

MODEL_FOR_KIND: dict[str, type[ExecutorConfigBase]] = {
    kind: model for model in MODELS for kind in model.kinds()
}
KNOWN_KINDS = tuple(MODEL_FOR_KIND)


def _kinds_text() -> str:
    """'local (or Quay's popen), kubernetes, ...': Quay's aliases beside the kind they name."""
    words: list[str] = []
    for model in MODELS:
        for kind in model.kinds():
            if kind in model.QUAY_ALIASES and words:
                words[-1] += f" (or Quay's {kind})"
            else:
                words.append(kind)
    return ", ".join(words)


KINDS_TEXT = _kinds_text()


def _load(kind: str) -> type[Executor[Any]] | None:
    model = MODEL_FOR_KIND.get(kind)
    if model is None:
        return None
    module_name, _, class_name = model.IMPLEMENTATION.partition(":")
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


def create_executor(config: ExecutorConfigBase, manager_id: str) -> Executor[Any]:
    cls = _load(config.EXECUTOR)
    if cls is None:
        raise ValueError(
            f"executor kind {config.EXECUTOR!r} is not implemented in this version of slipway; "
            f"available: {', '.join(implemented_kinds())}"
        )
    return cls(config, manager_id)
