"""One entry of BUILD_MANAGER[1].EXECUTORS: the config model of the executor its EXECUTOR
value names. The models are the executors' own (slipway.executors.registry); this module
only assembles them into the union pydantic validates an entry with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Tag

from slipway.executors.config_base import ExecutorConfigBase
from slipway.executors.ec2.config import EC2ExecutorConfig
from slipway.executors.kubernetes.config import KubernetesExecutorConfig
from slipway.executors.local.config import LocalExecutorConfig
from slipway.executors.registry import KINDS_TEXT, KNOWN_KINDS, MODEL_FOR_KIND, MODELS

__all__ = [
    "EXECUTOR_KINDS",
    "EXECUTOR_TAGS",
    "KINDS_TEXT",
    "MODEL_FOR_KIND",
    "EC2ExecutorConfig",
    "ExecutorConfig",
    "ExecutorConfigBase",
    "KubernetesExecutorConfig",
    "LocalExecutorConfig",
]

EXECUTOR_KINDS = KNOWN_KINDS


def _tag(model: type[ExecutorConfigBase]) -> str:
    return f"executor:{model.kinds()[0]}"


# Tags appear in pydantic error locations; the error translator strips them.
EXECUTOR_TAGS = {kind: _tag(model) for kind, model in MODEL_FOR_KIND.items()}


def _executor_tag(value: Any) -> str | None:
    kind = value.get("EXECUTOR") if isinstance(value, dict) else getattr(value, "EXECUTOR", None)
    return EXECUTOR_TAGS.get(kind) if isinstance(kind, str) else None


if TYPE_CHECKING:
    ExecutorConfig = ExecutorConfigBase
else:
    ExecutorConfig = Annotated[
        Union[tuple(Annotated[model, Tag(_tag(model))] for model in MODELS)],  # noqa: UP007
        Discriminator(_executor_tag),
    ]
