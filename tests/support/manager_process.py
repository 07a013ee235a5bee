"""One real manager process for multi-manager tests:

    python tests/support/manager_process.py CONFIG.json STATE_DIR

CONFIG.json is a Quay-style config (DB_URI on PostgreSQL, BUILD_MANAGER with a Redis
ORCHESTRATOR). It runs SlipwayServer (store, orchestrator, manager, gRPC; no HTTP API).
Its executors are configured as the real `local` kind; this script subclasses that kind
so that a "worker" is an asyncio task in this process speaking the real gRPC protocol,
which dials a random manager of SLIPWAY_TEST_MANAGERS (comma-separated host:port) for
every call: a worker's calls land on any manager.

Into STATE_DIR it writes `ready.json` (gRPC port, manager id) once serving,
`readiness.json` (SlipwayServer.readiness, refreshed), `starts.jsonl` (one line per
worker started) and `acked.jsonl` (one line per log line the manager acknowledged).
SLIPWAY_TEST_BUILD_SECONDS: how long a worker stays in `building` (default 0.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from slipway.config.loader import parse_config
from slipway.executors.base import Executor, WorkerSpec
from slipway.executors.local.executor import LocalExecutor
from slipway.manager import scheduler
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc
from slipway.server import SlipwayServer

DIGEST = "sha256:" + "cd" * 32
# statuses a real worker retries (the manager or its database/Redis is restarting)
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
             grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.CANCELLED}
CALL_TIMEOUT = 20.0
HEARTBEAT_INTERVAL = 0.5
GIVE_UP_AFTER = 30.0


class JobEnded(Exception):
    """The manager says this job is over (refused, or heartbeat answered false)."""


def _journal(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


class Stubs:
    """One channel per manager; each call picks a manager at random."""

    def __init__(self, addresses: list[str]) -> None:
        self.channels = [grpc.aio.insecure_channel(a) for a in addresses]
        self.stubs = [pb_grpc.BuildManagerStub(c) for c in self.channels]

    def any(self) -> pb_grpc.BuildManagerStub:
        return random.choice(self.stubs)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(grace=None)


async def _retrying(what: str, call: Any, failures: list[str] | None = None) -> Any:
    """Run `call()` (one RPC on a random manager), retrying transient failures (noted in
    `failures`: a retried call may have taken effect the first time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_AFTER
    delay = 0.1
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in TRANSIENT or loop.time() > deadline:
                raise JobEnded(f"{what}: {exc.code().name} {exc.details()}") from None
            if failures is not None:
                failures.append(exc.code().name)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


class ProtocolWorkerRun:
    def __init__(self, spec: WorkerSpec, stubs: Stubs, state: Path, seconds: float) -> None:
        self.spec = spec
        self.stubs = stubs
        self.state = state
        self.seconds = seconds
        self.job_jwt = ""
        self.seq = itertools.count(1)

    async def run(self) -> None:
        pack = await _retrying("register", lambda: self.stubs.any().RegisterBuildJob(
            pb.BuildJobArgs(register_jwt=self.spec.registration_token), timeout=CALL_TIMEOUT))
        self.job_jwt = pack.job_jwt
        beat = asyncio.get_running_loop().create_task(self._heartbeats())
        try:
            work = asyncio.get_running_loop().create_task(self._build())
            done, _ = await asyncio.wait({beat, work}, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
            errors = [t.exception() for t in done if not t.cancelled()]
            for error in errors:
                if error is not None:
                    raise error
        finally:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat

    async def _phase(self, phase: int, **kw: Any) -> None:
        failures: list[str] = []
        reply = await _retrying("SetPhase", lambda: self.stubs.any().SetPhase(
            pb.SetPhaseRequest(job_jwt=self.job_jwt, sequence_number=next(self.seq),
                               phase=phase, **kw),  # type: ignore[arg-type]
            timeout=CALL_TIMEOUT), failures)
        # a refusal after a failed try may only mean the first try went through: carry on,
        # the heartbeat tells a worker whose job really ended
        if not reply.success and not failures:
            raise JobEnded(f"SetPhase {phase} refused")

    async def _logs(self, messages: list[str]) -> None:
        pending = [(next(self.seq), m) for m in messages]
        while pending:
            async def requests(batch: list[tuple[int, str]]) -> AsyncIterator[Any]:
                for seq, message in batch:
                    yield pb.LogMessageRequest(
                        job_jwt=self.job_jwt, sequence_number=seq,
                        log_message=json.dumps({"stream": message + "\n"}), phase="building")

            batch = list(pending)
            replies = await _retrying("LogMessage", lambda b=batch: _collect(
                self.stubs.any().LogMessage(requests(b), timeout=CALL_TIMEOUT)))
            acked = {r.sequence_number for r in replies if r.success}
            for seq, message in batch:
                if seq in acked:
                    _journal(self.state / "acked.jsonl",
                             {"build_id": self.spec.build_id, "message": message})
            # a refused line (e.g. the stream state of another manager saw it) is resent
            # with a new number, like a real worker does
            pending = [(next(self.seq), m) for s, m in batch if s not in acked]
            if pending and not acked:
                raise JobEnded("log lines refused")

    async def _build(self) -> None:
        await self._phase(pb.UNPACKING)
        await self._phase(pb.PULLING)
        await self._phase(pb.BUILDING)
        job = self.spec.job_id[:8]
        await self._logs([f"Step 1/2 : FROM scratch ({job})", f"line a of {job}"])
        await asyncio.sleep(self.seconds)
        await self._logs([f"line b of {job}"])
        await self._phase(pb.PUSHING)
        await self._phase(pb.COMPLETE, image_digest=DIGEST)

    async def _heartbeats(self) -> None:
        while True:
            async def one() -> bool:
                async def requests() -> AsyncIterator[Any]:
                    yield pb.HeartbeatRequest(job_jwt=self.job_jwt)

                replies = await _collect(self.stubs.any().Heartbeat(
                    requests(), timeout=CALL_TIMEOUT))
                return bool(replies and replies[0].reply)

            if not await _retrying("Heartbeat", one):
                raise JobEnded("heartbeat refused")
            await asyncio.sleep(HEARTBEAT_INTERVAL)


async def _collect(call: Any) -> list[Any]:
    return [reply async for reply in call]


class InProcessExecutor(LocalExecutor):
    """The configured `local` kind, with workers run as in-process protocol clients."""

    def __init__(self, config: Any, manager_id: str, stubs: Stubs, state: Path,
                 seconds: float) -> None:
        super().__init__(config, manager_id)
        self.stubs = stubs
        self.state = state
        self.seconds = seconds
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.counter = itertools.count(1)

    async def start_worker(self, spec: WorkerSpec) -> str:
        worker_id = f"{os.getpid()}-{next(self.counter)}"
        _journal(self.state / "starts.jsonl", {
            "build_id": spec.build_id, "job_id": spec.job_id, "worker_id": worker_id,
            "manager_id": self.manager_id})
        run = ProtocolWorkerRun(spec, self.stubs, self.state, self.seconds)
        task = asyncio.get_running_loop().create_task(self._run(run))
        self.tasks[worker_id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(worker_id, None))
        return worker_id

    async def _run(self, run: ProtocolWorkerRun) -> None:
        try:
            await run.run()
        except JobEnded as exc:
            logging.getLogger("test.worker").info("worker of %s ended: %s",
                                                  run.spec.build_id, exc)

    async def stop_worker(self, worker_id: str) -> None:
        task = self.tasks.pop(worker_id, None)
        if task is not None:
            task.cancel()

    async def running_count(self) -> int:
        return len(self.tasks)

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()


async def main(config_path: Path, state: Path) -> None:
    raw = json.loads(config_path.read_text())
    config = parse_config(raw).config
    scheduler.BACKSTOP_SECONDS = 2.0  # lost wake-ups (outages) cost less in tests
    addresses = [a for a in os.environ.get("SLIPWAY_TEST_MANAGERS", "").split(",") if a]
    stubs = Stubs(addresses)
    seconds = float(os.environ.get("SLIPWAY_TEST_BUILD_SECONDS", "0.2"))

    def executors(_app: Any, manager_config: Any, manager_id: str) -> list[Executor]:
        return [InProcessExecutor(entry, manager_id, stubs, state, seconds)
                for entry in manager_config.EXECUTORS]

    server = SlipwayServer(config, with_api=False, executor_factory=executors)
    await server.start()
    assert server.manager is not None
    (state / "ready.json.tmp").write_text(json.dumps(
        {"grpc_port": server.grpc_port, "manager_id": server.manager.manager_id,
         "pid": os.getpid()}))
    os.replace(state / "ready.json.tmp", state / "ready.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            ready = await asyncio.wait_for(server.readiness(), 5)
        except Exception:
            ready = {"database": False, "orchestrator": False}
        (state / "readiness.json.tmp").write_text(json.dumps(ready))
        os.replace(state / "readiness.json.tmp", state / "readiness.json")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.3)
    await server.stop()
    await stubs.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if os.environ.get("SLIPWAY_TEST_DEBUG"):
        logging.getLogger("slipway.manager").setLevel(logging.DEBUG)
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
