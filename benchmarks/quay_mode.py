"""Quay mode: builds enqueued the way Quay's web app enqueues them (tests/support/quay_db.py:
a `repositorybuild` row, its token and a `queueitem`, in one transaction), built by a
slipway server whose DB_URI is Quay's database (docs/quay-contract.md).

- drain: N builds (one per repository: Quay runs one build per repository at a time)
  queued while no manager runs, then a manager starts: how fast it claims them from
  Quay's queue and calls the executor (`claimed_per_s`);
- paced: builds enqueued one at a time below capacity: Quay's web app cannot notify
  slipway, so a build waits for the next look at the queue (every POLL_INTERVAL_S, 1 s):
  `paced_p99_submit_to_executor_ms`, beside the embedded default's, which is woken by
  the submit itself.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Backend, Unavailable, percentile, rounded
from benchmarks.harness import ExecutorEvents, ServerProcess, server_config, wait_until
from benchmarks.workers import WorkerFleet


def _ms(values: list[float], pct: float) -> float | None:
    value = percentile(values, pct)
    return rounded(None if value is None else value * 1000, 1)


def _quay_config(backend: Backend, data_dir: Path, **manager: Any) -> dict[str, Any]:
    from support.quay_db import SECRET_KEY

    assert backend.redis is not None
    storage = tempfile.mkdtemp(prefix="slipway-bench-quay-storage-")
    config = server_config(data_dir, backend, top={
        "BUILDLOGS_REDIS": {"host": backend.redis["REDIS_HOST"],
                            "port": backend.redis["REDIS_PORT"]},
        "DISTRIBUTED_STORAGE_CONFIG": {"local_us": ["LocalStorage",
                                                    {"storage_path": storage}]},
        "DATABASE_SECRET_KEY": SECRET_KEY,
    })
    config["BUILD_MANAGER"][1].update(manager)
    return config


def _enqueue(quay: Any, prefix: str, count: int) -> dict[str, float]:
    """`count` builds, each in its own repository; when each was committed."""
    enqueued: dict[str, float] = {}
    for i in range(count):
        name = f"{prefix}{i:05d}"
        quay.repository("bench", name)
        started = quay.start_build("bench", name, archive_url="http://context.bench/c.tgz")
        enqueued[started.uuid] = time.time()
    return enqueued


async def _drain(backend: Backend, quay: Any, n: int, workdir: Path) -> dict[str, Any]:
    await asyncio.to_thread(_enqueue, quay, "drain", n)
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    config = _quay_config(backend, workdir / "quay-drain")
    server = ServerProcess(config, events.path, workdir / "quay-drain.log")
    fleet = WorkerFleet(f"127.0.0.1:{config['GRPC_LISTEN_ADDRESS'].rsplit(':', 1)[1]}",
                        complete=False)
    try:
        await server.start()
        await wait_until(lambda: len(fleet.executor_called) >= n, max(120.0, n / 5),
                         f"{n} of Quay's queued builds to reach the executor")
    finally:
        await fleet.close()
        await server.kill()
        await events.close()
    calls = sorted(fleet.executor_called.values())
    span = max(calls[-1] - calls[0], 1e-3)
    return {"builds": n, "claimed_per_s": rounded((n - 1) / span if n > 1 else None)}


async def _paced(backend: Backend, quay: Any, count: int, rate: float,
                 workdir: Path) -> dict[str, Any]:
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(_quay_config(backend, workdir / "quay-paced"), events.path,
                           workdir / "quay-paced.log")
    enqueued: dict[str, float] = {}
    try:
        await server.start()
        fleet = WorkerFleet(server.grpc_address, complete=True)
        for i in range(count):
            begun = time.monotonic()
            enqueued.update(await asyncio.to_thread(_enqueue, quay, f"paced{i:05d}-", 1))
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - begun)))
        await wait_until(lambda: all(b in fleet.completed for b in enqueued)
                         or bool(fleet.errors), 120, "paced Quay builds to complete")
        if fleet.errors:
            raise RuntimeError(f"workers failed: {fleet.errors[:3]}")
    finally:
        if fleet is not None:
            await fleet.close()
        await server.stop()
        await events.close()
    to_exec = [fleet.executor_called[b] - t for b, t in enqueued.items()]
    to_reg = [fleet.registered[b] - t for b, t in enqueued.items()]
    return {
        "paced_builds": count,
        "paced_rate_per_s": rate,
        "paced_p50_submit_to_executor_ms": _ms(to_exec, 50),
        "paced_p99_submit_to_executor_ms": _ms(to_exec, 99),
        "paced_p99_submit_to_register_ms": _ms(to_reg, 99),
    }


async def run(backend: Backend, n: int, workdir: Path, *, paced_builds: int = 50,
              paced_rate: float = 5.0) -> dict[str, Any]:
    if backend.db_uri is None or backend.redis is None:
        raise Unavailable("Quay mode needs PostgreSQL (Quay's database) and Redis")
    from support.quay_db import QuayDatabase

    from benchmarks.common import fresh_postgres
    from slipway.quay.queue import POLL_INTERVAL_S

    result: dict[str, Any] = {"poll_interval_s": POLL_INTERVAL_S}
    quay = QuayDatabase(backend.db_uri).create()
    result.update(await _drain(backend, quay, n, workdir))
    quay = QuayDatabase(fresh_postgres()).create()
    result.update(await _paced(backend, quay, paced_builds, paced_rate, workdir))
    return result
