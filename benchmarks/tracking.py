"""Tracking: many registered builds heartbeating every 2 s over a few gRPC connections.

The driver registers the builds; their heartbeat streams run in beater processes
(benchmarks/beaters.py). The manager's CPU and memory are read from /proc for its own
process only; the driver's CPU share counts the driver and its beaters.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.beaters import INTERVAL, BeaterProcesses
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

# heartbeat streams per beater process: 10,000 in the driver fell behind (4,100 of the
# 5,000 beats a second sent); four beaters of 2,500 each keep up (0.56 CPU with the driver)
STREAMS_PER_BEATER = 2_500
# builds submitted but not yet registered, at most: the fleet grows as fast as the manager
# takes it on. Submitted all at once (the scheduling benchmark's burst), registrations
# queue in a saturated manager, and grpc cancels those that wait 30 s unanswered; on
# PostgreSQL, thousands then gave up, so the figure measured the burst, not the tracking.
# With 1,000, a PostgreSQL manager already tracking 8,000 builds registers ~35 a second,
# and 27 still waited past 30 s.
MAX_UNREGISTERED = 250


async def run(backend: Backend, n: int, workdir: Path, *, window: float = 20.0,
              connections: int = 8, setup_limit: float = 300.0) -> dict[str, Any]:
    name = f"tracking-{backend.name}-{n}"
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(server_config(workdir / name, backend), events.path,
                           workdir / f"{name}.log")
    beaters: BeaterProcesses | None = None
    try:
        await server.start()
        beaters = await BeaterProcesses(
            server.grpc_address, max(1, math.ceil(n / STREAMS_PER_BEATER)), workdir).start()
        loop = asyncio.get_running_loop()
        # like a worker: heartbeats start the moment it has registered
        fleet = WorkerFleet(server.grpc_address, connections=connections, complete=False,
                            on_registered=beaters.add)
        await asyncio.sleep(1.0)
        rss0 = server.rss_bytes()
        setup_started = time.monotonic()

        async def admit(index: int) -> None:
            # (polled: the fleet's counters have no event to wait on)
            while index - len(fleet.registered) - fleet.failures >= MAX_UNREGISTERED:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        async with api_client(server, 16) as client:
            submitting = loop.create_task(submit_many(
                client, n, concurrency=16, namespaces=100, on_submitted=lambda _b, _t: None,
                admit=admit))
            try:
                # a manager that cannot keep up with the heartbeats of the builds it already
                # has registers the rest ever more slowly: measure what it reached
                await wait_until(lambda: len(fleet.registered) + fleet.failures >= n
                                 or (submitting.done() and submitting.exception() is not None),
                                 setup_limit, f"{n} builds to register")
            except TimeoutError:
                pass
            finally:
                submitting.cancel()
                (outcome,) = await asyncio.gather(submitting, return_exceptions=True)
        setup_s = time.monotonic() - setup_started
        # why the fleet stopped growing, when it stopped before n (a refused submission)
        setup_error = repr(outcome) if isinstance(outcome, Exception) else None
        if not fleet.registered:
            raise RuntimeError(f"workers failed: {fleet.errors[:5]}")
        await asyncio.sleep(INTERVAL + min(INTERVAL, window))  # every stream beating
        beaters.measure()
        cpu0, wall0, mine0 = server.cpu_seconds(), time.time(), os.times()
        beaters_cpu0 = beaters.cpu_seconds()
        await asyncio.sleep(window)
        cpu1, wall1, mine1 = server.cpu_seconds(), time.time(), os.times()
        beaters_cpu1 = beaters.cpu_seconds()
        beats = await beaters.stop()
        rss1 = server.rss_bytes()
    finally:
        if beaters is not None:
            await beaters.kill()
        if fleet is not None:
            await fleet.close()
        await server.kill()
        await events.close()
    wall = wall1 - wall0
    p99 = percentile(beats.latencies, 99)
    p50 = percentile(beats.latencies, 50)
    tracked = len(fleet.registered) if fleet is not None else 0
    return {
        "builds_submitted_for": n,
        "concurrent_builds": tracked,
        "setup_s": rounded(setup_s),
        "heartbeat_interval_s": INTERVAL,
        "window_s": rounded(wall),
        "heartbeats_per_s": rounded(beats.sent / wall),
        "expected_heartbeats_per_s": rounded(tracked / INTERVAL),
        "heartbeat_p50_ms": rounded(None if p50 is None else p50 * 1000),
        "heartbeat_p99_ms": rounded(None if p99 is None else p99 * 1000),
        "heartbeats_refused": beats.refused,
        # registrations that failed: those builds are not counted as tracked
        "registration_failures": fleet.failures if fleet is not None else 0,
        "registration_errors": fleet.errors[:3] if fleet is not None else [],
        "setup_error": setup_error,
        "streams_failed": beats.failed,
        "retried_calls": fleet.retried_calls if fleet is not None else 0,
        "manager_cpu_share": rounded((cpu1 - cpu0) / wall, 3),
        "beater_processes": beaters.count if beaters is not None else 0,
        "driver_cpu_share": rounded(
            ((mine1.user + mine1.system) - (mine0.user + mine0.system)
             + beaters_cpu1 - beaters_cpu0) / wall, 2),
        "bytes_per_build": int((rss1 - rss0) / tracked),
        "manager_rss_mb": rounded(rss1 / 2**20),
    }
