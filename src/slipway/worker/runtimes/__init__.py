"""Container runtimes the worker drives: podman, buildah, docker."""

from __future__ import annotations

from pathlib import Path

from slipway.worker.environment import WorkerEnvironment
from slipway.worker.process import LineSink
from slipway.worker.runtimes.base import Runtime


def make_runtime(env: WorkerEnvironment, workdir: Path, sink: LineSink) -> Runtime:
    from slipway.worker.runtimes.buildah import BuildahRuntime
    from slipway.worker.runtimes.docker import DockerRuntime
    from slipway.worker.runtimes.podman import PodmanRuntime

    classes: dict[str, type[Runtime]] = {
        "podman": PodmanRuntime,
        "buildah": BuildahRuntime,
        "docker": DockerRuntime,
    }
    return classes[env.container_runtime](env, workdir, sink)
