"""Starting a worker from its environment: `python -m slipway.worker` and `slipway worker`.

The local executor runs `python -m slipway.worker`, which imports only the worker: the
whole CLI (typer, rich, the config models) would add to every build's start-up, and a
small build is mostly start-up (benchmarks/README.md). It goes further with `--standby`: a
worker started before its build is known, which waits for its assignment on stdin."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slipway.worker.environment import WorkerEnvironment


def run_from_environment(verbose: bool = False) -> int:
    """Run one worker configured by the environment; its exit status."""
    from slipway.worker.environment import WorkerEnvironmentError, load_environment

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s slipway-worker %(levelname)s %(message)s",
    )
    try:
        env = load_environment()
    except WorkerEnvironmentError as exc:
        print(f"slipway worker: {exc}", file=sys.stderr)
        return 2
    _hold_work_dir(env.work_dir)
    return asyncio.run(_until_stopped(env))


_work_dir_lock: int | None = None  # open for the worker's whole life


def _hold_work_dir(work_dir: str) -> None:
    """Hold WORK_DIR while this worker lives when it is the local executor's (it has the
    executor's lock file): an executor starting on this host removes only directories
    that no live worker or executor holds."""
    from slipway.process_tree import hold_directory

    global _work_dir_lock
    if work_dir:
        try:
            _work_dir_lock = hold_directory(work_dir, create=False)
        except OSError:  # another executor's WORK_DIR, or none: nothing to hold
            pass


async def _until_stopped(env: WorkerEnvironment) -> int:
    """The worker, which SIGTERM, SIGINT or SIGHUP ask to stop: its build's processes are
    ended and its working directory removed before it exits (with Python's default
    handlers it would die at once and leave them running)."""
    from slipway.worker.agent import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    return await run_worker(env, stop)


def run_on_standby(verbose: bool = False, warm: Collection[str] = ()) -> int:
    """Import and warm up now, then wait for one line on stdin: the assignment, as JSON
    {"environment": {...}, "log_path": "..." or null}. End of input means the worker is
    not needed (its executor closed, or the manager is gone): exit 0 without a word.
    `warm`: "signing", "sbom": import those too (else the build's CPU pays for them)."""
    from slipway.worker import (
        agent,  # noqa: F401 (the imports are the point)
        registry_api,  # noqa: F401  (the registry cache's look)
    )
    from slipway.worker.context import warm_up
    from slipway.worker.runtimes import buildah, docker, podman  # noqa: F401  (make_runtime's)

    warm_up()
    if "signing" in warm:
        import slipway.worker.signing
    if "sbom" in warm:
        import slipway.signing.sbom  # noqa: F401  (its library takes half a second)
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    from slipway.worker import tracing

    tracing.assigned_at = time.time()
    assignment = json.loads(line)
    log_path = assignment.get("log_path")
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for stream in (1, 2):
            os.dup2(fd, stream)
        os.close(fd)
    os.environ.update(assignment["environment"])
    return run_from_environment(verbose)
