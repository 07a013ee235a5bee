"""The working container a worker's build leaves when the worker is killed together with
its runtime (the OOM killer, a SIGKILL of the session): nothing of the build was left to
remove it. The build's private directory, which the worker removes last, is then still in
the worker's directory, and its name is the build's marker (worker/runtimes/leftovers.py):
the worker's own clean-up code finds the containers so marked and removes them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from slipway.worker.environment import WorkerEnvironmentError, load_environment
from slipway.worker.runtimes import make_runtime
from slipway.worker.runtimes.leftovers import BUILD_DIRECTORY_PREFIX

log = logging.getLogger("slipway.executors.local.executor")


async def remove_left_containers(worker_directory: Path,
                                 environment: Mapping[str, str]) -> list[str]:
    """Remove the working containers of each build directory left in `worker_directory`
    (none when the worker ended its build itself), with the runtime and storage the
    worker had (`environment`: what it was started with); the directories' names."""
    left = await asyncio.to_thread(_build_directories, worker_directory)
    if not left:
        return []
    try:
        env = load_environment({**os.environ, **environment})
    except WorkerEnvironmentError as exc:
        log.warning("cannot remove the working containers of %s: %s", worker_directory, exc)
        return []

    async def quiet(line: str) -> None:
        return None

    for directory in left:
        try:
            await make_runtime(env, directory, quiet).remove_working_containers()
        except Exception as exc:  # best effort: the worker's directory still goes
            log.warning("cannot remove the working containers of %s: %s", directory, exc)
    return [d.name for d in left]


def _build_directories(worker_directory: Path) -> list[Path]:
    return sorted(d for d in worker_directory.glob(f"{BUILD_DIRECTORY_PREFIX}*") if d.is_dir())


__all__ = ["remove_left_containers"]
