"""Heartbeat streams in a process of their own: `python -m benchmarks.beaters ADDRESS`.

One Python process cannot keep 10,000 streams beating every 2 s and register the builds
too (measured: it sent 4,100 of the 5,000 beats a second while the manager was 60% busy),
so the tracking benchmark spreads the streams over a few of these. Real workers each
have a process of their own.

Commands on stdin, one per line: a job token (start beating for it at once), `measure`
(start counting), `stop` (stop, print the counts as one JSON line, exit).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import ROOT
from benchmarks.harness import channels, process_cpu_seconds, stubs
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc

INTERVAL = 2.0  # seconds between heartbeats, as the worker sends them
CONNECTIONS = 4


@dataclass
class Beats:
    measuring: bool = False
    sent: int = 0
    refused: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)


async def beat(stub: pb_grpc.BuildManagerStub, token: str, beats: Beats,
               stop: asyncio.Event) -> None:
    """One worker's heartbeat stream, as the real agent keeps it: write, read, sleep."""
    call = stub.Heartbeat()
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


async def main(address: str) -> None:
    chans = channels(address, CONNECTIONS)
    next_stub = itertools.cycle(stubs(chans))
    beats, stop = Beats(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():  # (empty: the driver is gone)
        if line == "measure":
            beats.measuring = True
        elif line == "stop":
            break
        else:
            tasks.append(loop.create_task(beat(next(next_stub), line, beats, stop)))
    beats.measuring = False
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for chan in chans:
        await chan.close()
    print(json.dumps(asdict(beats)), flush=True)


class BeaterProcesses:
    """The driver's side: `count` beater processes, tokens dealt round robin."""

    def __init__(self, address: str, count: int, log_dir: Path) -> None:
        self.address = address
        self.count = count
        self.log_dir = log_dir
        self.procs: list[asyncio.subprocess.Process] = []
        self._next = 0

    async def start(self) -> BeaterProcesses:
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        for i in range(self.count):
            with (self.log_dir / f"beater-{i}.log").open("ab") as log:
                self.procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "benchmarks.beaters", self.address, cwd=ROOT,
                    env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                ))
        return self

    def _send(self, proc: asyncio.subprocess.Process, line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line.encode() + b"\n")

    def add(self, _build_id: str, token: str) -> None:
        """A build registered (WorkerFleet's on_registered): beat for it."""
        self._send(self.procs[self._next % self.count], token)
        self._next += 1

    def measure(self) -> None:
        for proc in self.procs:
            self._send(proc, "measure")

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(p.pid) for p in self.procs)

    async def stop(self) -> Beats:
        """Every process's counts, together."""
        total = Beats()
        for proc in self.procs:
            if proc.returncode is None:
                self._send(proc, "stop")
        for i, proc in enumerate(self.procs):
            assert proc.stdout is not None
            # (one long line: every latency measured)
            output = await asyncio.wait_for(proc.stdout.read(), 120)
            await proc.wait()
            if not output:
                log = (self.log_dir / f"beater-{i}.log").read_text()[-2000:]
                raise RuntimeError(f"beater {i} ended with {proc.returncode}: {log}")
            part = Beats(**json.loads(output))
            total.sent += part.sent
            total.refused += part.refused
            total.failed += part.failed
            total.latencies += part.latencies
        return total

    async def kill(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
