"""A real manager (SQLite store, memory orchestrator, gRPC on a free port) with test
executors, for lifecycle tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from slipway.backends.sql import SqlBackend
from slipway.config.loader import parse_config
from slipway.domain.phases import Phase
from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.manager.control import BuildControl
from slipway.manager.service import BuildManager
from slipway.manager.servicer import create_grpc_server
from slipway.orchestrator.memory import MemoryOrchestrator
from slipway.store.records import BuildRecord, NewBuild
from slipway.tokens.jwt import TokenService
from slipway.tokens.keys import load_or_create
from support.enqueue import enqueue
from support.ports import free_port
from support.protocol_worker import close_all as close_all_workers
from support.task_dump import dump_tasks

TEARDOWN_STEP_LIMIT = 15.0

WorkerScript = Callable[[WorkerSpec], Awaitable[None]]




class ScriptedExecutor(Executor):
    """Starts `script(spec)` as an asyncio task (a worker speaking real gRPC), or fails
    to start when `fail` is set. Records every start and stop."""

    def __init__(
        self,
        config: Any,
        manager_id: str,
        script: WorkerScript | None = None,
        fail: str | None = None,
    ) -> None:
        super().__init__(config, manager_id)
        self.script = script
        self.fail = fail
        self.started: list[WorkerSpec] = []
        self.stopped: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.errors: list[BaseException] = []

    async def start_worker(self, spec: WorkerSpec) -> str:
        if self.fail:
            raise ExecutorError(self.fail)
        self.started.append(spec)
        worker_id = f"{self.name}-{len(self.started)}"
        if self.script is not None:
            self.tasks[worker_id] = asyncio.get_running_loop().create_task(self._run(spec))
        return worker_id

    async def _run(self, spec: WorkerSpec) -> None:
        assert self.script is not None
        try:
            await self.script(spec)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by the test through `errors`
            self.errors.append(exc)
            raise

    async def stop_worker(self, worker_id: str) -> None:
        self.stopped.append(worker_id)
        task = self.tasks.pop(worker_id, None)
        if task is not None:
            task.cancel()

    async def running_count(self) -> int:
        return sum(1 for t in self.tasks.values() if not t.done())


class UnservedLinks:
    """Signed links no one serves: the scripted workers never fetch them."""

    def context(self, record: BuildRecord) -> str:
        return f"http://127.0.0.1:1/context/{record.id}.tar"

    def file(self, file_id: str, purpose: str) -> str:
        return f"http://127.0.0.1:1/files/{file_id}"


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        manager: dict[str, Any] | None = None,
        top: dict[str, Any] | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.grpc_port = free_port()
        manager_cfg = {
            "EXECUTORS": [{"EXECUTOR": "local", "NAME": "default"}],
            "RETRY_AFTER": 0,
            **(manager or {}),
        }
        raw = {
            "DATA_DIR": str(tmp_path / "data"),
            "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{self.grpc_port}",
            "SERVER_HOSTNAME": "registry.test:5000",
            "BUILD_MANAGER": ["ephemeral", manager_cfg],
            **(top or {}),
        }
        self.config = parse_config(raw).config
        self.executors: list[Executor] = []
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.teardown_hangs: list[str] = []

    def executor_configs(self) -> list[Any]:
        assert self.config.manager is not None
        return list(self.config.manager.EXECUTORS)

    async def start(self, executors: list[Executor]) -> Harness:
        self.executors = executors
        self.backend = SqlBackend(self.config)
        await self.backend.open(UnservedLinks())
        self.store = self.backend.store
        key = load_or_create(self.config.DATA_DIR)
        await self.store.keys.publish(key.kid, key.public_pem)
        self.tokens = TokenService(key, self.config.BUILDMAN_HOSTNAME, self.store.keys.get)
        self.orchestrator = MemoryOrchestrator()
        await self.orchestrator.start()
        self.manager = BuildManager(
            app_config=self.config,
            manager_config=self.config.manager,
            store=self.store,
            orchestrator=self.orchestrator,
            executors=executors,
            tokens=self.tokens,
        )
        self.control = BuildControl(self.store, self.orchestrator)
        self.control.attach_scheduler(self.manager.scheduler.wake)
        cert, key = self.config.BUILDMAN_TLS_CERT, self.config.BUILDMAN_TLS_KEY
        self.grpc, _ = create_grpc_server(
            self.manager.ctx, self.address, self.backend,
            tls_cert=str(cert) if cert else None, tls_key=str(key) if key else None,
        )
        await self.grpc.start()
        await self.manager.start()
        return self

    async def stop(self) -> None:
        # Each step bounded, so a hang says where (with every task's await chain)
        # instead of stalling the suite until pytest-timeout, and fails the test. Only a
        # test worker's channel whose close hangs is tolerated (client side, not ours).
        await close_all_workers()
        for what, step in (
            ("the manager's shutdown", self.manager.shutdown),
            ("stopping the gRPC server", lambda: self.grpc.stop(grace=0)),
            ("closing the orchestrator", self.orchestrator.close),
            ("closing the store", self.store.close),
        ):
            task = asyncio.get_running_loop().create_task(step())
            done, _ = await asyncio.wait({task}, timeout=TEARDOWN_STEP_LIMIT)
            if not done:  # left running: wait_for would wait for it to take the cancel
                self.teardown_hangs.append(what)
            else:
                task.result()  # a step that failed fails the test
        if self.teardown_hangs:
            dump_tasks("tasks when the harness teardown hung")
            raise AssertionError(f"teardown hung in: {', '.join(self.teardown_hangs)} "
                                 f"(each given {TEARDOWN_STEP_LIMIT} s)")

    async def submit(
        self, namespace: str = "ns", repository: str = "repo", tags: tuple[str, ...] = ("latest",)
    ) -> str:
        record = await enqueue(self.control, NewBuild(
            namespace=namespace,
            repository=repository,
            tags=list(tags),
            registry=self.config.SERVER_HOSTNAME,
        ))
        return record.id

    async def build(self, build_id: str) -> BuildRecord:
        record = await self.store.builds.get(build_id)
        assert record is not None
        return record

    async def wait_phase(self, build_id: str, *phases: Phase, within: float = 20) -> BuildRecord:
        """Wait until the build is in one of `phases` (a safety limit, not a timing test)."""
        deadline = time.monotonic() + within
        while True:
            record = await self.build(build_id)
            if record.phase in phases:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"build stayed in {record.phase} (wanted {phases}); "
                    f"worker errors: {self.worker_errors()}"
                )
            await asyncio.sleep(0.02)

    async def wait_started(self, build_id: str, within: float = 20) -> BuildRecord:
        """Wait until an executor has started a worker for the build's current attempt."""
        deadline = time.monotonic() + within
        while True:
            record = await self.build(build_id)
            if record.executor is not None and record.phase is Phase.BUILD_SCHEDULED:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker started; build is {record.phase}")
            await asyncio.sleep(0.02)

    def worker_errors(self) -> list[BaseException]:
        return [e for ex in self.executors if isinstance(ex, ScriptedExecutor) for e in ex.errors]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"condition not reached; worker errors: {self.worker_errors()}"
                )
            await asyncio.sleep(0.02)

    async def log(self, build_id: str) -> list[Any]:
        _, entries = await self.store.logs.read(build_id)
        return entries
