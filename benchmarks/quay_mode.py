"""Quay mode: builds enqueued the way Quay's web app enqueues them (tests/support/quay_db.py:
a `repositorybuild` row, its token and a `queueitem`, in one transaction), built by a
slipway server whose DB_URI is Quay's database (docs/quay-contract.md).

- drain: N builds (one per repository: Quay runs one build per repository at a time)
  queued while no manager runs, then a manager starts: how fast it claims them from
  Quay's queue and calls the executor (`claimed_per_s`);
- paced: builds enqueued one at a time below capacity: Quay's web app cannot notify
  slipway, so a build waits for the next look at the queue: the watch of the queue's
  highest id every QUAY_QUEUE_WATCH_INTERVAL (quay/queue_watch.py),
  `paced_p99_submit_to_executor_ms`; and, before it, the queue's poll alone (every
  POLL_INTERVAL_S, 1 s; the watch off), `poll_only_paced_p99_submit_to_executor_ms`;
- database cost: a manager idle on Quay's database, with the watch and without, for
  `cost_window_s`: the transactions it ran per second (pg_stat_database), the CPU of
  the PostgreSQL backends serving it and of the manager (from /proc); the watch's share
  is the difference, per look (`watch_db_cpu_us_per_look`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Backend, Unavailable, percentile, rounded
from benchmarks.harness import ExecutorEvents, ServerProcess, server_config, wait_until
from benchmarks.trace_spans import fetch_trace, span_medians_ms, span_p99_ms
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
                 workdir: Path, watch_interval: float) -> dict[str, Any]:
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    name = f"quay-paced-{watch_interval}"
    server = ServerProcess(
        _quay_config(backend, workdir / name, QUAY_QUEUE_WATCH_INTERVAL=watch_interval),
        events.path, workdir / f"{name}.log")
    enqueued: dict[str, float] = {}
    repositories: dict[str, str] = {}
    try:
        await server.start()
        fleet = WorkerFleet(server.grpc_address, complete=True)
        for i in range(count):
            begun = time.monotonic()
            one = await asyncio.to_thread(_enqueue, quay, f"paced{i:05d}-", 1)
            enqueued.update(one)
            repositories.update(dict.fromkeys(one, f"bench/paced{i:05d}-00000"))
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - begun)))
        await wait_until(lambda: all(b in fleet.completed for b in enqueued)
                         or bool(fleet.errors), 120, "paced Quay builds to complete")
        if fleet.errors:
            raise RuntimeError(f"workers failed: {fleet.errors[:3]}")
        traces = await _traces(server, repositories)
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
        # from the traces (docs/traces.md): the queue wait is Quay's enqueue to the claim,
        # what the watch (or the poll) decides; the rest is the claim and the start
        "paced_p99_queue_wait_ms": span_p99_ms(traces, "queue wait"),
        "paced_span_medians_ms": span_medians_ms(traces),
    }


async def _traces(server: ServerProcess, builds: dict[str, str]) -> list[dict[str, Any]]:
    """The traces of `builds` (build id -> repository); Quay mode keeps them in the
    manager's memory: read them before it stops."""
    import httpx

    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.api_url, headers=headers,
                                 timeout=30) as client:
        return [await fetch_trace(client, f"/api/v1/repository/{repository}/build/{build_id}")
                for build_id, repository in builds.items()]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_state(uri: str) -> tuple[int, list[int]]:
    """The database's transactions so far, and the backends serving others than us."""
    import psycopg

    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        [xacts] = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()").fetchone() or [0]
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
    return int(xacts), pids


async def _idle_cost(backend: Backend, uri: str, workdir: Path, watch_interval: float,
                     window: float) -> dict[str, Any]:
    """What a manager with no build to run costs Quay's database over `window` s."""
    name = f"quay-idle-{watch_interval}"
    events = ExecutorEvents(lambda e: None)  # no build comes: the executor is never called
    await events.start()
    server = ServerProcess(
        _quay_config(backend, workdir / name, QUAY_QUEUE_WATCH_INTERVAL=watch_interval),
        events.path, workdir / f"{name}.log")
    try:
        await server.start()
        await asyncio.sleep(3.0)  # past the start's own queries; the pool's connections open
        xacts, pids = await asyncio.to_thread(_database_state, uri)
        db_cpu = sum(_cpu_seconds(p) for p in pids)
        manager_cpu = _cpu_seconds(server.pid)
        began = time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - began
        db_cpu = sum(_cpu_seconds(p) for p in pids) - db_cpu
        manager_cpu = _cpu_seconds(server.pid) - manager_cpu
        # two of them are this function's own reads (pg_stat_database's counters of the
        # other backends lag by up to a second: PostgreSQL flushes them once a second)
        xacts = (await asyncio.to_thread(_database_state, uri))[0] - xacts - 2
    finally:
        await server.stop()
        await events.close()
    return {"transactions_per_s": rounded(xacts / elapsed, 1),
            "db_cpu_ms_per_s": rounded(db_cpu * 1000 / elapsed, 2),
            "manager_cpu_ms_per_s": rounded(manager_cpu * 1000 / elapsed, 2)}


async def run(backend: Backend, n: int, workdir: Path, *, paced_builds: int = 50,
              paced_rate: float = 5.0, cost_window: float = 20.0) -> dict[str, Any]:
    if backend.db_uri is None or backend.redis is None:
        raise Unavailable("Quay mode needs PostgreSQL (Quay's database) and Redis")
    from support.quay_db import QuayDatabase

    from benchmarks.common import fresh_postgres
    from slipway.config.models import ManagerConfig
    from slipway.quay.queue import POLL_INTERVAL_S

    watch = ManagerConfig.model_fields["QUAY_QUEUE_WATCH_INTERVAL"].default
    result: dict[str, Any] = {"poll_interval_s": POLL_INTERVAL_S,
                              "watch_interval_s": watch}
    quay = QuayDatabase(backend.db_uri).create()
    result.update(await _drain(backend, quay, n, workdir))
    quay = QuayDatabase(fresh_postgres()).create()
    result.update(await _paced(backend, quay, paced_builds, paced_rate, workdir, watch))
    quay = QuayDatabase(fresh_postgres()).create()
    before = await _paced(backend, quay, paced_builds, paced_rate, workdir, 0.0)
    result.update({f"poll_only_{k}": v for k, v in before.items() if "_ms" in k})
    # the database's cost of a manager with nothing to do, with the watch and without
    uri = fresh_postgres()
    QuayDatabase(uri).create()
    backend = dataclasses.replace(backend, db_uri=uri)
    with_watch = await _idle_cost(backend, uri, workdir, watch, cost_window)
    poll_only = await _idle_cost(backend, uri, workdir, 0.0, cost_window)
    looks_per_s = 1 / watch
    extra_cpu = (with_watch["db_cpu_ms_per_s"] or 0) - (poll_only["db_cpu_ms_per_s"] or 0)
    result.update({
        "cost_window_s": cost_window,
        "idle_with_watch": with_watch,
        "idle_poll_only": poll_only,
        "watch_queries_per_s": rounded(
            (with_watch["transactions_per_s"] or 0) - (poll_only["transactions_per_s"] or 0), 1),
        "watch_db_cpu_us_per_look": rounded(max(0.0, extra_cpu) * 1000 / looks_per_s, 1),
    })
    return result
