"""Fault injection for the outage tests (tests/faults/): slipway servers in this process
whose workers run the real worker's own loop, and a probe that keeps calling the HTTP API
through an outage and records what a client saw.

The workers are `slipway.worker.agent._run` (registration, heartbeats, the Reporter and
all their retries, as a worker process runs them) with the build itself replaced by a
script (`ScriptedBuilds.build`): phases and log lines through the Reporter, no runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from slipway.config.loader import parse_config
from slipway.executors.base import Executor, WorkerSpec
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import BuildManagerStub
from slipway.server import SlipwayServer
from slipway.worker import agent
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.reporter import Reporter
from support.manager_harness import ScriptedExecutor, free_port

DIGEST = "sha256:" + "ab" * 32
FINAL_PHASES = ("complete", "error", "internalerror", "cancelled", "expired")


class ScriptedBuilds:
    """The executors' workers: each runs `agent._run` against the manager that started
    it; its build reports unpacking, pulling, building, logs a line every `pause` until
    `release` is set (a few more after `pushing_from`, when set, then reports pushing),
    and completes. `exits` holds the exit status of each worker that returned by itself
    (0: its end was delivered; a worker the manager released after its end is cancelled
    and not in it)."""

    def __init__(self, pause: float = 0.1, heartbeat_interval: float = 0.5) -> None:
        self.pause = pause
        self.heartbeat_interval = heartbeat_interval
        self.release = asyncio.Event()
        self.pushing_from: asyncio.Event | None = None
        self.exits: list[tuple[str, int]] = []
        self.executors: list[ScriptedExecutor] = []

    def executor_factory(self, _app: Any, manager_config: Any, manager_id: str
                         ) -> list[Executor]:
        made = [ScriptedExecutor(entry, manager_id, self._worker)
                for entry in manager_config.EXECUTORS]
        self.executors += made
        return list(made)

    async def _worker(self, spec: WorkerSpec) -> None:
        env = WorkerEnvironment(
            token=spec.registration_token, server=spec.manager_address,
            build_uuid=spec.build_id, insecure=True,
            heartbeat_interval=self.heartbeat_interval,
            # as the manager computed it for this worker (manager/worker_env.py)
            retry_window=float(spec.environment["RETRY_WINDOW"]),
        )
        stopped = asyncio.get_running_loop().create_task(asyncio.Event().wait())
        try:
            async with grpc.aio.insecure_channel(spec.manager_address) as channel:
                status = await agent._run(env, BuildManagerStub(channel), stopped, self.build)
            self.exits.append((spec.build_id, status))
        finally:
            stopped.cancel()

    async def build(self, _pack: pb.BuildPack, _env: WorkerEnvironment,
                    reporter: Reporter) -> None:
        for phase in (pb.UNPACKING, pb.PULLING, pb.BUILDING):
            await reporter.phase(phase)
        line = 0
        pushed = False
        while not self.release.is_set():
            line += 1
            await reporter.log(f"RUN step line {line}")
            if (not pushed and self.pushing_from is not None
                    and self.pushing_from.is_set()):
                pushed = True
                await reporter.phase(pb.PUSHING)  # in the outage: retried until it lands
            await asyncio.sleep(self.pause)
        await reporter.log("the last line")
        if not pushed:
            await reporter.phase(pb.PUSHING)
        await reporter.phase(pb.COMPLETE, image_digest=DIGEST)


def server_config(tmp_path: Path, name: str, **overrides: Any) -> dict[str, Any]:
    """A slipway process's config: its own ports and DATA_DIR, one `local` executor."""
    grpc_address = f"127.0.0.1:{free_port()}"
    manager: dict[str, Any] = {
        "EXECUTORS": [{"EXECUTOR": "local", "NAME": "scripted", "SETUP_TIME": 30}],
        "ALLOWED_WORKER_COUNT": 20,
        "HEARTBEAT_EXPIRY": 20,
        "RETRY_AFTER": 0,
        **overrides.pop("manager", {}),
    }
    return {
        "DATA_DIR": str(tmp_path / name),
        "API_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
        "GRPC_LISTEN_ADDRESS": grpc_address,
        # workers dial their own manager; its tokens name it
        "BUILDMAN_HOSTNAME": grpc_address,
        "SERVER_HOSTNAME": "registry.test:5000",
        "BUILD_MANAGER": ["ephemeral", manager],
        **overrides,
    }


@contextlib.asynccontextmanager
async def running_servers(configs: list[dict[str, Any]], builds: ScriptedBuilds
                          ) -> AsyncIterator[list[SlipwayServer]]:
    """SlipwayServers (API, gRPC, manager) started in order, stopped at the end."""
    servers: list[SlipwayServer] = []
    try:
        for raw in configs:
            server = SlipwayServer(parse_config(raw).config,
                                   executor_factory=builds.executor_factory)
            servers.append(server)
            await server.start()
        yield servers
    finally:
        for server in reversed(servers):
            with contextlib.suppress(Exception):
                await server.stop()


def api_client(server: SlipwayServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.api_port}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    is_json: bool
    retry_after: str | None
    message: str


@dataclass
class ApiProbe:
    """Calls `routes` ((method, path, json body)) on every client in turn until stopped;
    every answer is kept."""

    clients: list[httpx.AsyncClient]
    routes: list[tuple[str, str, dict[str, Any] | None]]
    answers: list[Answer] = field(default_factory=list)

    async def call_all(self) -> list[Answer]:
        made: list[Answer] = []
        for client in self.clients:
            for method, path, body in self.routes:
                response = await client.request(method, path, json=body)
                try:
                    payload = response.json()
                    is_json = isinstance(payload, dict)
                    message = str(payload.get("error_message", "")) if is_json else ""
                except json.JSONDecodeError:
                    is_json, message = False, response.text[:200]
                made.append(Answer(method, path, response.status_code, is_json,
                                   response.headers.get("retry-after"), message))
        self.answers += made
        return made

    async def run_until(self, stop: asyncio.Event, pause: float = 0.1) -> None:
        while not stop.is_set():
            await self.call_all()
            await asyncio.sleep(pause)

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)


async def wait_until(predicate: Any, what: str, within: float = 60, pause: float = 0.1
                     ) -> None:
    """Poll `predicate` (sync or async) until true; a safety limit, not a timing test."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(pause)
