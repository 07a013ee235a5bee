"""Workers that can be cut off from their manager: slipway's own worker client
(worker/agent.py: registration, heartbeats, the Reporter's log stream and phases, its
retries) running a scripted build in place of podman, each reaching the manager through
a TCP proxy of its own, so that a test cuts one worker off (a partition) and heals it
while the others go on. For manager_harness.py's executors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from slipway.executors.base import WorkerSpec
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.agent import run_worker
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.reporter import Reporter
from support.manager_harness import ScriptedExecutor
from support.tcp_proxy import TcpProxy

DIGEST = "sha256:" + "cd" * 32
LINE_PAUSE_S = 0.02  # between two output lines of a scripted build
STOP_TRIES, STOP_WAIT_S = 5, 5.0


@dataclass
class CutOffWorker:
    """One worker: its proxy, the lines its build wrote, how it ended."""

    name: str
    spec: WorkerSpec
    proxy: TcpProxy
    finish: asyncio.Event = field(default_factory=asyncio.Event)  # set: push, COMPLETE
    lines: list[str] = field(default_factory=list)
    exit_code: int | None = None
    build_ended: bool = False  # the scripted build returned or was stopped

    async def build(self, pack: pb.BuildPack, env: WorkerEnvironment,
                    reporter: Reporter) -> None:
        """Phases as a real build reports them, and numbered output lines until `finish`."""
        try:
            for phase in (pb.UNPACKING, pb.PULLING, pb.BUILDING):
                await reporter.phase(phase)
            while not self.finish.is_set():
                line = f"{self.name} line {len(self.lines) + 1:04d}"
                await reporter.log(line)
                self.lines.append(line)
                await asyncio.sleep(LINE_PAUSE_S)
            await reporter.phase(pb.PUSHING)
            await reporter.phase(pb.COMPLETE, image_digest=DIGEST)
        finally:
            self.build_ended = True


class PartitionedWorkers:
    """The script of a ScriptedExecutor: each worker it starts gets its own proxy."""

    def __init__(self, manager_port: int, *, heartbeat_interval: float = 0.3,
                 retry_window: float = 120.0) -> None:
        self.manager_port = manager_port
        self.heartbeat_interval = heartbeat_interval
        self.retry_window = retry_window
        self.workers: list[CutOffWorker] = []
        self.started = asyncio.Condition()

    async def __call__(self, spec: WorkerSpec) -> None:
        worker = CutOffWorker(f"w{len(self.workers) + 1}", spec, TcpProxy([self.manager_port]))
        async with self.started:
            self.workers.append(worker)
            self.started.notify_all()
        env = WorkerEnvironment(
            token=spec.registration_token,
            server=f"127.0.0.1:{worker.proxy.port}",
            build_uuid=spec.build_id,
            insecure=True,
            heartbeat_interval=self.heartbeat_interval,
            retry_window=self.retry_window,
        )
        try:
            worker.exit_code = await run_worker(env, build=worker.build)
        finally:
            worker.proxy.close()

    async def worker(self, number: int, within: float = 30) -> CutOffWorker:
        """The `number`th worker started (1 is the first), once it is."""
        async with self.started:
            await asyncio.wait_for(
                self.started.wait_for(lambda: len(self.workers) >= number), within)
        return self.workers[number - 1]


class UnreachableExecutor(ScriptedExecutor):
    """An executor whose stop does not reach a worker that is cut off (a machine on the
    far side of a partition): the worker goes on until it hears from the manager."""

    async def stop_worker(self, worker_id: str) -> None:
        self.stopped.append(worker_id)

    async def stop_all(self) -> None:
        """At the test's end: the workers still running are ended (cancelled again while
        a worker's last flush waits on a manager it cannot reach)."""
        tasks = {t for t in self.tasks.values() if not t.done()}
        for _ in range(STOP_TRIES):
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            _, tasks = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
