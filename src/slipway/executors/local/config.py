"""The `local` executor's config (Quay's `popen`)."""

from __future__ import annotations

import shutil
from typing import ClassVar, Literal

from slipway.config_fields import field
from slipway.executors.config_base import ContainerRuntime, ExecutorConfigBase


def _detect_runtime() -> ContainerRuntime:
    found: list[ContainerRuntime] = ["podman", "buildah", "docker"]
    for runtime in found:
        if shutil.which(runtime):
            return runtime
    return "podman"


class LocalExecutorConfig(ExecutorConfigBase):
    """`local` (Quay's `popen`): the worker runs as a child process of the manager."""

    IMPLEMENTATION: ClassVar[str] = "slipway.executors.local.executor:LocalExecutor"
    QUAY_ALIASES: ClassVar[frozenset[str]] = frozenset({"popen"})

    EXECUTOR: Literal["local", "popen"]
    CONTAINER_RUNTIME: ContainerRuntime = field(
        default_factory=_detect_runtime,
        example="podman",
        description="default: the first of podman, buildah, docker found on PATH",
    )
    BUILDER_BINARY_LOCATION: str | None = field(
        None,
        example="/usr/local/bin/quay-builder",
        description="command to run instead of `slipway worker`",
    )
    REGISTRY_CACHE_PUSH: Literal["after-end", "during"] = field(
        "after-end",
        example="during",
        description="slipway: when a build's steps go to the registry cache "
        "(docs/layer-cache.md): after-end, once the build's end is reported (the build "
        "does not wait for them; the executor lets the worker finish); during, step by "
        "step while the build runs",
    )

    @property
    def cache_push_after_end(self) -> bool:
        return self.REGISTRY_CACHE_PUSH == "after-end"
