"""Scheduling: N builds submitted through the API, started on the null executor, run by
protocol clients (register, building, complete)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Backend, percentile, rounded
from benchmarks.harness import (
    ExecutorEvents,
    ServerProcess,
    api_client,
    server_config,
    submit_many,
    wait_until,
)
from benchmarks.workers import WorkerFleet


def _ms(values: list[float], pct: float) -> float | None:
    value = percentile(values, pct)
    return rounded(None if value is None else value * 1000, 1)


async def _drain(backend: Backend, n: int, workdir: Path, name: str,
                 concurrency: int, namespaces: int) -> dict[str, Any]:
    """N builds queued through the API while no manager runs, then a manager starts: how
    fast it takes them from the queue to the executor (docs/architecture.md: queue ->
    executor call)."""
    config = server_config(workdir / name, backend)
    queued_only = {**config, "BUILD_MANAGER": ["external"]}
    server = ServerProcess(queued_only, None, workdir / f"{name}-queue.log")
    await server.start()
    # the manager starts draining before the server says it is ready: its start-up CPU is
    # taken to be that of this (same code, no manager) server
    startup_cpu = server.cpu_seconds()
    t0 = time.time()
    try:
        async with api_client(server, concurrency) as client:
            await submit_many(client, n, concurrency=concurrency, namespaces=namespaces,
                              on_submitted=lambda _b, _t: None, repo_prefix="q")
    finally:
        await server.stop()
    submits_per_s = n / (time.time() - t0)
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(config, events.path, workdir / f"{name}-drain.log")
    # the workers register (the manager's load while it schedules) but never finish
    fleet = WorkerFleet(f"127.0.0.1:{config['GRPC_LISTEN_ADDRESS'].rsplit(':', 1)[1]}",
                        complete=False)
    try:
        await server.start()
        await wait_until(lambda: len(fleet.executor_called) >= n,
                         max(120.0, n / 5), f"{n} queued builds to reach the executor")
        cpu1 = server.cpu_seconds()
    finally:
        await fleet.close()
        await server.kill()
        await events.close()
    calls = sorted(fleet.executor_called.values())
    span = max(calls[-1] - calls[0], 1e-3)
    return {
        "builds_per_s": rounded((n - 1) / span if n > 1 else None),
        "queue_submits_per_s": rounded(submits_per_s),
        "drain_cpu_ms_per_build": rounded((cpu1 - startup_cpu) / n * 1000, 2),
        "drain_retried_calls": fleet.retried_calls,
    }


async def _paced(client: Any, fleet: WorkerFleet, count: int, rate: float) -> dict[str, Any]:
    """Builds submitted one at a time at `rate` per second, below what the manager can
    take: the latency with capacity (executors and CPU) free."""
    submitted: dict[str, float] = {}
    for i in range(count):
        started = time.monotonic()
        await submit_many(client, 1, concurrency=1, namespaces=1, repo_prefix=f"p{i:05d}-",
                          on_submitted=submitted.__setitem__)
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    await wait_until(lambda: all(b in fleet.completed for b in submitted) or bool(fleet.errors),
                     120, "paced builds to complete")
    to_exec = [fleet.executor_called[b] - t for b, t in submitted.items()]
    to_reg = [fleet.registered[b] - t for b, t in submitted.items()]
    return {
        "paced_builds": count,
        "paced_rate_per_s": rate,
        "paced_p50_submit_to_executor_ms": _ms(to_exec, 50),
        "paced_p99_submit_to_executor_ms": _ms(to_exec, 99),
        "paced_p99_submit_to_register_ms": _ms(to_reg, 99),
    }


async def _live(backend: Backend, n: int, workdir: Path, name: str,
                concurrency: int, namespaces: int, paced_builds: int = 200,
                paced_rate: float = 20.0) -> dict[str, Any]:
    """First builds submitted one at a time below capacity (paced latency), then N builds
    submitted through the API at once while the manager runs and workers complete them:
    latency from the submit to the executor call and to the worker's registration."""
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(server_config(workdir / name, backend), events.path,
                           workdir / f"{name}-live.log")
    submitted: dict[str, float] = {}
    try:
        await server.start()
        fleet = WorkerFleet(server.grpc_address, complete=True)
        async with api_client(server, concurrency) as client:
            paced = await _paced(client, fleet, paced_builds, paced_rate)
            cpu0, wall0, mine0 = server.cpu_seconds(), time.time(), os.times()
            await submit_many(client, n, concurrency=concurrency, namespaces=namespaces,
                              on_submitted=submitted.__setitem__)
            await wait_until(lambda: len(fleet.completed) + fleet.failures >= n + paced_builds,
                             max(120.0, n / 10), f"{n} builds to complete")
            wall1, cpu1, mine1 = time.time(), server.cpu_seconds(), os.times()
    finally:
        if fleet is not None:
            await fleet.close()
        await server.stop()
        await events.close()
    # a worker that gave up registering (a saturated manager kept it waiting past its
    # retry window) is a figure, as for a real fleet; any other failure is the benchmark's
    gave_up = [e for e in fleet.errors if "RegisterBuildJob" in e]
    if len(gave_up) < len(fleet.errors):
        raise RuntimeError(f"workers failed: {[e for e in fleet.errors if e not in gave_up][:5]}")
    first = min(submitted.values())
    to_exec = [fleet.executor_called[b] - t for b, t in submitted.items()]
    # (over the workers that registered; those that gave up are counted apart)
    to_reg = [fleet.registered[b] - t for b, t in submitted.items() if b in fleet.registered]
    last_exec = max(fleet.executor_called[b] for b in submitted)
    wall = wall1 - wall0
    driver_cpu = (mine1.user + mine1.system) - (mine0.user + mine0.system)
    return {
        **paced,
        "live_builds_per_s": rounded(n / (last_exec - first)),
        "p50_submit_to_executor_ms": _ms(to_exec, 50),
        "p99_submit_to_executor_ms": _ms(to_exec, 99),
        "p50_submit_to_register_ms": _ms(to_reg, 50),
        "p99_submit_to_register_ms": _ms(to_reg, 99),
        "registration_failures": len(gave_up),
        "registration_errors": gave_up[:3],
        "completed_per_s": rounded(n / wall),
        "server_cpu_share": rounded((cpu1 - cpu0) / wall, 2),
        "retried_calls": fleet.retried_calls,
        "driver_cpu_share": rounded(driver_cpu / wall, 2),
    }


async def run(backend: Backend, n: int, workdir: Path, *, concurrency: int = 16,
              namespaces: int = 100, paced_builds: int = 200) -> dict[str, Any]:
    """One figure set for N builds: the drain rate, then live latencies (own servers)."""
    name = f"scheduling-{backend.name}-{n}"
    result: dict[str, Any] = {"builds": n, "submit_concurrency": concurrency,
                              "namespaces": namespaces}
    result.update(await _drain(backend, n, workdir, name + "-drain", concurrency, namespaces))
    if backend.db_uri is not None:  # PostgreSQL: a fresh database for the second server
        from benchmarks.common import fresh_postgres

        fresh_postgres()
    result.update(await _live(backend, n, workdir, name + "-live", concurrency, namespaces,
                              paced_builds=paced_builds))
    return result
