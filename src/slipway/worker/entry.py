"""Starting a worker from its environment: `python -m slipway.worker` and `slipway worker`.

The local executor runs `python -m slipway.worker`, which imports only the worker: the
whole CLI (typer, rich, the config models) costs a quarter of a second of start-up, a
fifth of a small build's time (benchmarks/, e2e)."""

from __future__ import annotations

import asyncio
import logging
import sys


def run_from_environment(verbose: bool = False) -> int:
    """Run one worker configured by the environment; its exit status."""
    from slipway.worker.agent import run_worker
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
    return asyncio.run(run_worker(env))
