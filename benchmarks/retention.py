"""Retention: many builds pushed through a server, each logging its lines, with the log
archive and retention on and off; the database's size, the p99 of a build list and of a
log read, and the rate builds go through, at each checkpoint (docs/data-lifecycle.md).

Builds go through as in the scheduling benchmark (the null executor, protocol-speaking
workers from this process), each worker registering, reporting `building`, logging
`lines` lines through the worker's own Reporter and reporting `complete`. They are
submitted in waves of `wave` builds over `repositories` repositories; after each wave the
driver measures. With retention on, a build's age limit is `age_s` seconds (RETENTION
DEFAULT_DAYS as a fraction of a day), KEEP_LAST 10, a pass every `interval_s`; off, both
the archive and retention are off (what slipway did before: everything stays).

Target: with retention on, the database stays within 2x of its size after the first
1,000 builds (`size_ratio_vs_first_1000`), and the p99s do not grow (end vs start)."""

from __future__ import annotations

import asyncio
import functools
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Backend, percentile, rounded
from benchmarks.harness import (
    ExecutorEvents,
    ServerProcess,
    api_client,
    server_config,
    wait_until,
)
from benchmarks.workers import DIGEST, WorkerFleet
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.reporter import Reporter

READS_PER_CHECKPOINT = 40
KEEP_LAST = 10


class LoggingFleet(WorkerFleet):
    """Workers that register, report `building`, log `lines` lines and complete."""

    def __init__(self, address: str, lines: int) -> None:
        super().__init__(address, connections=8, complete=True)
        self.lines = lines

    async def _work(self, build_id: str, token: str) -> None:
        try:
            pack = await self._register(token)
            self.registered[build_id] = time.time()
            # as a worker reports: phases and lines in one sequence, through its Reporter
            reporter = Reporter(self.stub(), pack.job_jwt)
            if not await reporter.phase(pb.BUILDING):
                raise RuntimeError("phase building refused")
            for i in range(self.lines):
                await reporter.log(f"Step {i}: compiling module_{i:06d}.c -O2 -Wall")
            accepted = await reporter.phase(pb.COMPLETE, image_digest=DIGEST)
            await reporter.close()
            if not accepted:
                raise RuntimeError("phase complete refused")
            self.completed.add(build_id)
        except Exception as exc:
            self.failures += 1
            if len(self.errors) < 20:
                self.errors.append(f"{build_id}: {type(exc).__name__}: {exc}")


def database_size(backend: Backend, data_dir: Path) -> int:
    """As slipway reports it (store/database_size.py), read beside the server."""
    if backend.db_uri is None:
        conn = sqlite3.connect(f"file:{data_dir / 'slipway.db'}?mode=ro", uri=True)
        try:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            return int(pages) * int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(backend.db_uri, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


async def _timed_get(client: httpx.AsyncClient, path: str, **params: Any) -> float:
    t0 = time.perf_counter()
    r = await client.get(path, params=params)
    r.raise_for_status()
    return time.perf_counter() - t0


async def _checkpoint(client: httpx.AsyncClient, backend: Backend, data_dir: Path,
                      done: int, recent: list[str], paths: dict[str, str],
                      wave_rate: float, repositories: int) -> dict[str, Any]:
    """The figures now: the database's size, a build list's and a log read's p99 (of
    builds from the waves before the last, archived by now when retention is on)."""
    lists, reads = [], []
    for i in range(READS_PER_CHECKPOINT):
        lists.append(await _timed_get(client, _repository_path(i % repositories)))
        build_id = random.choice(recent)
        reads.append(await _timed_get(client, paths[build_id] + "/logs", start=0))
    p99_list, p99_read = percentile(lists, 99), percentile(reads, 99)
    return {
        "builds": done,
        "database_bytes": database_size(backend, data_dir),
        "p99_build_list_ms": rounded(p99_list * 1000 if p99_list else None, 1),
        "p99_log_read_ms": rounded(p99_read * 1000 if p99_read else None, 1),
        "builds_per_s": rounded(wave_rate),
    }


def _through(fleet: WorkerFleet, count: int) -> bool:
    return len(fleet.completed) + fleet.failures >= count


def _repository_path(repository: int) -> str:
    return f"/api/v1/repository/ns{repository % 4:02d}/repo{repository:03d}/build/"


async def _submit(client: httpx.AsyncClient, indexes: range, repositories: int,
                  paths: dict[str, str], order: list[str]) -> None:
    """One build per index, 16 requests in flight, over the repositories in turn."""
    lanes = iter(indexes)

    async def lane() -> None:
        for i in lanes:
            path = _repository_path(i % repositories)
            r = await client.post(path, json={"archive_url": "http://127.0.0.1:9/c.tar.gz"})
            r.raise_for_status()
            build_id = r.json()["id"]
            paths[build_id] = path + build_id
            order.append(build_id)

    await asyncio.gather(*(lane() for _ in range(16)))


async def _one(backend: Backend, workdir: Path, name: str, *, builds: int, wave: int,
               lines: int, retention: bool, age_s: float, interval_s: float,
               repositories: int) -> dict[str, Any]:
    top: dict[str, Any] = (
        {"LOG_ARCHIVE": {"ARCHIVE_AFTER": 1},
         "RETENTION": {"DEFAULT_DAYS": age_s / 86400, "KEEP_LAST": KEEP_LAST,
                       "INTERVAL": interval_s, "CONTEXT_GRACE": 0}}
        if retention else
        {"LOG_ARCHIVE": {"ENABLED": False}, "RETENTION": {"ENABLED": False}})
    data_dir = workdir / name
    config = server_config(data_dir, backend, top=top)
    fleet: LoggingFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(config, events.path, workdir / f"{name}.log")
    checkpoints: list[dict[str, Any]] = []
    paths: dict[str, str] = {}
    order: list[str] = []
    t_start = time.time()
    try:
        await server.start()
        fleet = LoggingFleet(server.grpc_address, lines)
        async with api_client(server, 16) as client:
            submitted = 0
            while submitted < builds:
                count = min(wave, builds - submitted)
                t0 = time.perf_counter()
                await _submit(client, range(submitted, submitted + count), repositories,
                              paths, order)
                submitted += count
                await wait_until(functools.partial(_through, fleet, submitted),
                                 max(300.0, count), f"{submitted} builds to complete")
                if fleet.errors:
                    raise RuntimeError(f"workers failed: {fleet.errors[:5]}")
                rate = count / (time.perf_counter() - t0)
                # reads of builds two waves back at least (archived by now, with retention)
                earlier = order[max(0, submitted - 2 * wave):max(1, submitted - wave)]
                recent = [b for b in earlier if b in fleet.completed] or order[:1]
                checkpoints.append(await _checkpoint(client, backend, data_dir, submitted,
                                                     recent, paths, rate, repositories))
    finally:
        if fleet is not None:
            await fleet.close()
        await server.stop()
        await events.close()
    first_1000 = next((c for c in checkpoints if c["builds"] >= min(1000, builds)),
                      checkpoints[0])
    start, end = checkpoints[0], checkpoints[-1]
    return {
        "builds": builds,
        "lines_per_build": lines,
        "duration_s": rounded(time.time() - t_start),
        "database_bytes_after_first_1000": first_1000["database_bytes"],
        "database_bytes_end": end["database_bytes"],
        "size_ratio_vs_first_1000": rounded(end["database_bytes"]
                                            / max(1, first_1000["database_bytes"]), 2),
        "p99_build_list_ms_start": start["p99_build_list_ms"],
        "p99_build_list_ms_end": end["p99_build_list_ms"],
        "p99_log_read_ms_start": start["p99_log_read_ms"],
        "p99_log_read_ms_end": end["p99_log_read_ms"],
        "builds_per_s_start": start["builds_per_s"],
        "builds_per_s_end": end["builds_per_s"],
        "checkpoints": checkpoints,
    }


async def run(backend: Backend, workdir: Path, *, builds: int = 2400, wave: int = 300,
              lines: int = 500, age_s: float = 60.0, interval_s: float = 5.0,
              repositories: int = 100) -> dict[str, Any]:
    """The same builds with retention on, then off (a fresh database each)."""
    on = await _one(backend, workdir, f"retention-{backend.name}-on", builds=builds,
                    wave=wave, lines=lines, retention=True, age_s=age_s,
                    interval_s=interval_s, repositories=repositories)
    if backend.db_uri is not None:
        from benchmarks.common import fresh_postgres

        backend.db_uri = fresh_postgres()
    off = await _one(backend, workdir, f"retention-{backend.name}-off", builds=builds,
                     wave=wave, lines=lines, retention=False, age_s=age_s,
                     interval_s=interval_s, repositories=repositories)
    return {
        "builds": builds,
        "lines_per_build": lines,
        "retention_age_s": age_s,
        "size_ratio_vs_first_1000": on["size_ratio_vs_first_1000"],
        "database_bytes_end": on["database_bytes_end"],
        "database_bytes_end_without_retention": off["database_bytes_end"],
        "p99_build_list_ms_start": on["p99_build_list_ms_start"],
        "p99_build_list_ms_end": on["p99_build_list_ms_end"],
        "p99_log_read_ms_start": on["p99_log_read_ms_start"],
        "p99_log_read_ms_end": on["p99_log_read_ms_end"],
        "builds_per_s_start": on["builds_per_s_start"],
        "builds_per_s_end": on["builds_per_s_end"],
        "on": on,
        "off": off,
    }
