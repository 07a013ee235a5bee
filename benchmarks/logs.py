"""Logs: lines ingested per second through LogMessage streams of many concurrent builds,
and the time to read one long log back through the API.

Each build's lines go through the worker's own Reporter, as a real worker sends them: a
build that floods its output sends the lines that are ready together as one message. The
same lines sent one per message (as Quay's builder does) are measured too, beside the
rate an acknowledge-only grpcio server reaches with them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import ROOT, Backend, rounded
from benchmarks.harness import (
    CLK_TCK,
    ExecutorEvents,
    ServerProcess,
    api_client,
    server_config,
    submit_many,
    wait_until,
)
from benchmarks.workers import WorkerFleet
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.reporter import Reporter


def _text(i: int) -> str:
    return f"Step {i}: compiling module_{i:06d}.c -O2 -Wall"


def _line(i: int) -> str:
    return json.dumps({"stream": _text(i) + "\n"})


async def _report(fleet: WorkerFleet, token: str, count: int) -> None:
    """Log `count` lines as fast as a worker can, through its Reporter, until all are
    acknowledged."""
    reporter = Reporter(fleet.stub(), token)
    for i in range(count):
        await reporter.log(_text(i))
    await reporter.flush()
    await reporter.close()


async def _stored(client: httpx.AsyncClient, path: str) -> int:
    r = await client.get(path + "/logs", params={"start": 10**9})
    r.raise_for_status()
    return int(r.json()["total"])


async def _stream(fleet: WorkerFleet, token: str, count: int, first_seq: int = 1) -> int:
    """Send `count` lines on one LogMessage stream, one per message; how many the manager
    accepted."""
    async def requests() -> AsyncIterator[pb.LogMessageRequest]:
        for i in range(count):
            yield pb.LogMessageRequest(job_jwt=token, sequence_number=first_seq + i,
                                       log_message=_line(i), phase="building")

    accepted = 0
    async for reply in fleet.stub().LogMessage(requests()):
        accepted += bool(reply.success)
    return accepted


async def _ceiling(builds: int, lines_per_build: int) -> dict[str, Any]:
    """The same streams against an acknowledge-only gRPC server (benchmarks/grpc_ceiling)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.grpc_ceiling", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        fleet = WorkerFleet(f"127.0.0.1:{ready['grpc_port']}", connections=8)
        cpu = Path(f"/proc/{ready['pid']}/stat")
        try:
            cpu0, t0 = _cpu_seconds(cpu), time.perf_counter()
            counts = await asyncio.gather(*(
                _stream(fleet, "t", lines_per_build) for _ in range(builds)))
            elapsed = time.perf_counter() - t0
            cpu1 = _cpu_seconds(cpu)
        finally:
            await fleet.close()
    finally:
        proc.stdin.close()
        await proc.wait()
    return {
        "grpc_ceiling_lines_per_s": rounded(sum(counts) / elapsed),
        "grpc_ceiling_server_cpu_share": rounded((cpu1 - cpu0) / elapsed, 2),
    }


def _cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def run(backend: Backend, workdir: Path, *, builds: int = 100, lines_per_build: int = 2000,
              read_lines: int = 100_000) -> dict[str, Any]:
    name = f"logs-{backend.name}"
    fleet: WorkerFleet | None = None
    events = ExecutorEvents(lambda e: fleet.on_event(e) if fleet else None)
    await events.start()
    server = ServerProcess(server_config(workdir / name, backend), events.path,
                           workdir / f"{name}.log")
    try:
        await server.start()
        fleet = WorkerFleet(server.grpc_address, connections=8, complete=False)
        ids: list[str] = []
        paths: dict[str, str] = {}
        async with api_client(server, 16) as client:
            await submit_many(client, builds + 1, concurrency=16, namespaces=10,
                              on_submitted=lambda b, _t: ids.append(b), paths=paths)
            await wait_until(lambda: len(fleet.registered) + fleet.failures >= builds + 1,
                             120, "builds to register")
            if fleet.errors:
                raise RuntimeError(f"workers failed: {fleet.errors[:5]}")
            reader, writers = ids[0], ids[1:]
            before = await asyncio.gather(*(_stored(client, paths[b]) for b in writers))
            cpu0, t0, mine0 = server.cpu_seconds(), time.perf_counter(), os.times()
            await asyncio.gather(*(
                _report(fleet, fleet.job_tokens[b], lines_per_build) for b in writers))
            elapsed = time.perf_counter() - t0
            cpu1, mine1 = server.cpu_seconds(), os.times()
            after = await asyncio.gather(*(_stored(client, paths[b]) for b in writers))
            # the same lines, one per message, on the same streams (sequence numbers go on
            # from the Reporter's: far above what it used)
            t2 = time.perf_counter()
            counts = await asyncio.gather(*(
                _stream(fleet, fleet.job_tokens[b], lines_per_build, 10**6) for b in writers))
            single_elapsed = time.perf_counter() - t2
            cpu2 = server.cpu_seconds()
            # one long log, then read it back as a user would
            await _report(fleet, fleet.job_tokens[reader], read_lines)
            path = paths[reader] + "/logs"
            t1 = time.perf_counter()
            got, pages, start = 0, 0, 0
            while True:
                r = await client.get(path, params={"start": start})
                r.raise_for_status()
                body = r.json()
                entries = len(body["logs"])
                got, pages, start = got + entries, pages + 1, start + entries
                if entries == 0 or start >= int(body["total"]):
                    break
            read_s = time.perf_counter() - t1
    finally:
        if fleet is not None:
            await fleet.close()
        await server.stop()
        await events.close()
    stored = sum(after) - sum(before)
    ceiling = await _ceiling(builds, lines_per_build)
    return {
        **ceiling,
        "concurrent_builds": builds,
        "lines_sent": builds * lines_per_build,
        "lines_accepted": stored,
        "lines_per_s": rounded(stored / elapsed),
        "server_cpu_share": rounded((cpu1 - cpu0) / elapsed, 2),
        "one_per_message_lines_accepted": sum(counts),
        "one_per_message_lines_per_s": rounded(sum(counts) / single_elapsed),
        "one_per_message_server_cpu_share": rounded((cpu2 - cpu1) / single_elapsed, 2),
        "driver_cpu_share": rounded(
            ((mine1.user + mine1.system) - (mine0.user + mine0.system)) / elapsed, 2),
        "read_log_lines": got,
        "read_pages": pages,
        "read_log_s": rounded(read_s, 3),
    }
