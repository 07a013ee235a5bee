"""Tracking: many registered builds heartbeating every 2 s over a few gRPC connections.

The heartbeating clients live in the driver process; the manager's CPU and memory are
read from /proc for its own process only.
"""

from __future__ import annotations

import asyncio
import os
import random
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
from slipway.protocol import buildman_pb2 as pb

INTERVAL = 2.0  # seconds between heartbeats, as the worker sends them


class Beats:
    def __init__(self) -> None:
        self.measuring = False
        self.latencies: list[float] = []
        self.refused = 0
        self.failed = 0
        self.sent = 0


async def _beat(fleet: WorkerFleet, token: str, beats: Beats, stop: asyncio.Event) -> None:
    """One worker's heartbeat stream, as the real agent keeps it: write, read, sleep."""
    call = fleet.stub().Heartbeat()
    request = pb.HeartbeatRequest(job_jwt=token)
    await asyncio.sleep(random.uniform(0, INTERVAL))  # workers start at different times
    try:
        while not stop.is_set():
            sent = time.perf_counter()
            await call.write(request)
            reply = await call.read()
            now = time.perf_counter()
            if beats.measuring:
                beats.sent += 1
                beats.latencies.append(now - sent)
                if reply is None or not reply.reply:
                    beats.refused += 1
            await asyncio.sleep(max(0.0, INTERVAL - (time.perf_counter() - sent)))
    except Exception:
        beats.failed += 1
    finally:
        call.cancel()


async def run(backend: Backend, n: int, workdir: Path, *, window: float = 20.0,
              connections: int = 8, setup_limit: float = 300.0) -> dict[str, Any]:
    name = f"tracking-{backend.name}-{n}"
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(server_config(workdir / name, backend), events.path,
                           workdir / f"{name}.log")
    beats, stop = Beats(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await server.start()
        loop = asyncio.get_running_loop()

        def start_beating(_build_id: str, token: str) -> None:
            # like a worker: heartbeats start the moment it has registered
            tasks.append(loop.create_task(_beat(fleet_ref[0], token, beats, stop)))

        fleet = WorkerFleet(server.grpc_address, connections=connections, complete=False,
                            on_registered=start_beating)
        fleet_ref = [fleet]
        await asyncio.sleep(1.0)
        rss0 = server.rss_bytes()
        setup_started = time.monotonic()
        async with api_client(server, 16) as client:
            submitting = loop.create_task(submit_many(
                client, n, concurrency=16, namespaces=100, on_submitted=lambda _b, _t: None))
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
                await asyncio.gather(submitting, return_exceptions=True)
        setup_s = time.monotonic() - setup_started
        if not fleet.registered:
            raise RuntimeError(f"workers failed: {fleet.errors[:5]}")
        await asyncio.sleep(INTERVAL + min(INTERVAL, window))  # every stream beating
        beats.measuring = True
        cpu0, wall0, mine0 = server.cpu_seconds(), time.time(), os.times()
        await asyncio.sleep(window)
        cpu1, wall1, mine1 = server.cpu_seconds(), time.time(), os.times()
        beats.measuring = False
        rss1 = server.rss_bytes()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
        "cancelled_call_retries": fleet.cancelled_retries if fleet is not None else 0,
        "streams_failed": beats.failed,
        "manager_cpu_share": rounded((cpu1 - cpu0) / wall, 3),
        "driver_cpu_share": rounded(
            ((mine1.user + mine1.system) - (mine0.user + mine0.system)) / wall, 2),
        "bytes_per_build": int((rss1 - rss0) / tracked),
        "manager_rss_mb": rounded(rss1 / 2**20),
    }
