"""Managers as production runs them, for the fault cases (tests/faults/) and the restarts
benchmark (benchmarks/restarts.py).

N server processes (`python -m benchmarks.server_proc`: SlipwayServer with its HTTP API
and gRPC) share one private PostgreSQL and one private redis-server. Their executors
start nothing: they tell this process (benchmarks/null_executor.py), whose workers speak
the real protocol and make every call to any manager, like workers in pods that outlive
the manager which started them. Builds are submitted through the managers' APIs, and
every answer is counted (`Submitter.answers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx

from slipway.domain.results import AttemptEnd
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc
from slipway.store.facade import SqlStore
from slipway.store.records import BuildRecord
from slipway.worker.errors import ManagerUnreachable
from slipway.worker.retry import CALL_TIMEOUT, REGISTER_TIMEOUT, call_with_retry
from support.postgres_server import PostgresServer, free_port
from support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
START_LIMIT_S = 120.0  # guards against a server that never comes up; not a timing test
T = TypeVar("T")


def manager_config(index: int, data_dir: Path, postgres: PostgresServer,
                   redis: RedisServer, heartbeat_expiry_s: int = 5,
                   setup_time_s: int = 10) -> dict[str, Any]:
    """config.yaml keys of manager `index`: production mode, capacity never the limit."""
    api_port, grpc_port = free_port(), free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "DB_URI": postgres.uri,
        "DATA_DIR": str(data_dir),  # each manager its own signing key
        "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{grpc_port}",
        "PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "SERVER_HOSTNAME": "registry.test:5000",
        "BUILDMAN_HOSTNAME": "builder.test:50051",  # the tokens' audience, shared
        "NAMESPACE_MAX_QUEUED_BUILDS": 100_000,
        "BUILD_MANAGER": ["ephemeral", {
            # a NAME per manager: a build's attempts say which manager started each
            "EXECUTORS": [{"EXECUTOR": "local", "NAME": f"null-m{index}",
                           "SETUP_TIME": setup_time_s}],
            "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis.port},
            "ALLOWED_WORKER_COUNT": 10_000,
            "JOB_REGISTRATION_TIMEOUT": 10,
            "HEARTBEAT_EXPIRY": heartbeat_expiry_s,
            "RETRY_AFTER": 0,
        }],
    }


class ServingManager:
    """One `python -m benchmarks.server_proc` child: API and gRPC, null executor."""

    def __init__(self, index: int, config: dict[str, Any], null_socket: str, log: Path) -> None:
        self.index = index
        self.executor_name = f"null-m{index}"
        self.spec = {"config": config, "null_socket": null_socket}
        self.log_path = log
        self.proc: asyncio.subprocess.Process | None = None
        self.api_url = ""
        self.grpc_address = ""
        self.token = ""

    async def start(self) -> ServingManager:
        env = {**os.environ,
               "XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="slipway-cluster-xdg-"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.server_proc", json.dumps(self.spec),
                cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_LIMIT_S)
        except TimeoutError:
            line = b""
        if not line:
            await self.kill()
            raise RuntimeError(f"manager {self.index} did not start:\n{self.log_tail()}")
        ready = json.loads(line)
        self.api_url = f"http://127.0.0.1:{ready['api_port']}"
        self.grpc_address = f"127.0.0.1:{ready['grpc_port']}"
        self.token = ready["token"]
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs (its builds are not given back)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        """The clean stop: server_proc stops its server when its stdin closes."""
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()

    async def ready(self) -> bool:
        """GET /readyz answers 200."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"{self.api_url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class BuildRun:
    """What the workers saw of one build, over all its attempts (time.time() values)."""

    executor_calls: list[str] = field(default_factory=list)  # executor names, in order
    first_registered: float | None = None
    completed: float | None = None
    ended_early: int = 0  # workers told their job was over, or that gave up


class JobOver(Exception):
    """The manager answered that this worker's job has ended."""


class AnyManagerWorkers:
    """Turns each executor call into a worker: register, heartbeat every `beat_s`,
    `building`, `build_seconds` of work, `complete`. Each call goes to a manager picked at
    random and is retried as a worker retries (slipway.worker.retry)."""

    def __init__(self, build_seconds: float, beat_s: float = 0.5,
                 retry_window_s: float = 60.0) -> None:
        self.build_seconds = build_seconds
        self.beat_s = beat_s
        self.retry_window_s = retry_window_s
        self.runs: dict[str, BuildRun] = {}
        self.errors: list[str] = []
        self._stubs: list[pb_grpc.BuildManagerStub] = []
        self._channels: list[grpc.aio.Channel] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def connect(self, addresses: list[str]) -> None:
        self._channels = [grpc.aio.insecure_channel(a) for a in addresses]
        self._stubs = [pb_grpc.BuildManagerStub(c) for c in self._channels]

    def on_event(self, event: dict[str, Any]) -> None:
        """One null-executor line: {"b": build id, "t": registration token, "e": name}."""
        run = self.runs.setdefault(event["b"], BuildRun())
        run.executor_calls.append(str(event.get("e", "")))
        task = asyncio.get_running_loop().create_task(self._work(run, event["b"], event["t"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, what: str,
                    call: Callable[[pb_grpc.BuildManagerStub], Awaitable[T]]) -> tuple[T, int]:
        """(reply, tries), each try on a manager picked at random."""
        tries = 0

        async def once() -> T:
            nonlocal tries
            tries += 1
            return await call(random.choice(self._stubs))

        return await call_with_retry(what, self.retry_window_s, once), tries

    async def _work(self, run: BuildRun, build_id: str, token: str) -> None:
        try:
            pack, _ = await self._call("RegisterBuildJob", lambda s: s.RegisterBuildJob(
                pb.BuildJobArgs(register_jwt=token), timeout=REGISTER_TIMEOUT))
            if run.first_registered is None:
                run.first_registered = time.time()
            beats = asyncio.get_running_loop().create_task(self._heartbeats(pack.job_jwt))
            work = asyncio.get_running_loop().create_task(self._build(pack.job_jwt))
            try:
                done, _ = await asyncio.wait({beats, work}, return_when=asyncio.FIRST_COMPLETED)
                if work in done:
                    work.result()  # raises what the build's calls raised
                    run.completed = time.time()
                else:
                    beats.result()  # the heartbeat was refused: JobOver
            finally:
                for task in (beats, work):
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
        except (JobOver, ManagerUnreachable) as exc:
            run.ended_early += 1
            if len(self.errors) < 50:
                self.errors.append(f"{build_id}: {exc}")

    async def _build(self, job_jwt: str) -> None:
        numbers = itertools.count(1)
        await self._phase(job_jwt, numbers, pb.BUILDING)
        await asyncio.sleep(self.build_seconds)
        await self._phase(job_jwt, numbers, pb.COMPLETE)

    async def _phase(self, job_jwt: str, numbers: Iterator[int], phase: int) -> None:
        # a new sequence number for each try, as slipway's worker sends (its reporter): a
        # try cut by an outage may have kept its number in the job key
        def send(stub: pb_grpc.BuildManagerStub) -> Awaitable[pb.SetPhaseResponse]:
            request = pb.SetPhaseRequest(
                job_jwt=job_jwt, sequence_number=next(numbers),
                phase=phase,  # type: ignore[arg-type]
                image_digest=DIGEST if phase == pb.COMPLETE else "")
            return stub.SetPhase(request, timeout=CALL_TIMEOUT)

        reply, tries = await self._call(f"SetPhase({phase})", send)
        # a refusal after a failed try may only mean the first try went through
        if not reply.success and tries == 1:
            raise JobOver(f"SetPhase({phase}) refused")

    async def _heartbeats(self, job_jwt: str) -> None:
        async def requests() -> AsyncIterator[pb.HeartbeatRequest]:
            yield pb.HeartbeatRequest(job_jwt=job_jwt)

        async def beat(stub: pb_grpc.BuildManagerStub) -> bool:
            replies = [r.reply async for r in stub.Heartbeat(requests(), timeout=CALL_TIMEOUT)]
            return bool(replies and replies[0])

        while True:
            alive, _ = await self._call("Heartbeat", beat)
            if not alive:
                raise JobOver("heartbeat answered false")
            await asyncio.sleep(self.beat_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels:
            await channel.close()


@dataclass
class Accepted:
    build_id: str
    api: int  # the manager whose API took it
    sent: float  # time.time() of the first try
    answered: float  # time.time() of the 201


class Submitter:
    """POSTs builds through the managers' APIs as a client behind a load balancer would:
    a refused or unanswered submit is tried again on the next API until accepted (or
    `give_up_s` passes). Every answer is counted by status ("201", "503", ...;
    "no answer" for a connection that failed)."""

    def __init__(self, managers: list[ServingManager], give_up_s: float = 60.0) -> None:
        self.clients = [httpx.AsyncClient(
            base_url=m.api_url, timeout=30, headers={"Authorization": f"Bearer {m.token}"})
            for m in managers]
        self.give_up_s = give_up_s
        self.answers: Counter[str] = Counter()
        self.accepted: list[Accepted] = []
        self.given_up = 0

    async def submit(self, index: int, repository: str) -> Accepted | None:
        path = f"/api/v1/repository/ns{index % 3}/{repository}/build/"
        body = {"archive_url": "http://127.0.0.1:9/context.tar.gz"}
        sent = time.time()
        api = index % len(self.clients)
        while True:
            pause = 0.25
            try:
                answer = await self.clients[api].post(path, json=body)
            except httpx.TransportError:
                self.answers["no answer"] += 1
            else:
                self.answers[str(answer.status_code)] += 1
                if answer.status_code == 201:
                    accepted = Accepted(answer.json()["id"], api, sent, time.time())
                    self.accepted.append(accepted)
                    return accepted
                if answer.status_code < 500 and answer.status_code != 429:
                    raise RuntimeError(f"submit refused: {answer.status_code} {answer.text[:300]}")
                with contextlib.suppress(ValueError):
                    pause = min(1.0, float(answer.headers.get("Retry-After", pause)))
            if time.time() - sent > self.give_up_s:
                self.given_up += 1
                return None
            api = (api + 1) % len(self.clients)
            await asyncio.sleep(pause)

    def count(self, predicate: Callable[[int], bool]) -> int:
        return sum(n for status, n in self.answers.items()
                   if status.isdigit() and predicate(int(status)))

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


class ExecutorEvents:
    """The UNIX socket the managers' null executors write their start_worker lines to."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self.path = str(Path(tempfile.mkdtemp(prefix="slipway-cluster-")) / "executor.sock")
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # a killed manager's connection
            while line := await reader.readline():
                self.on_event(json.loads(line))
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


class ServingCluster:
    def __init__(self, base: Path, managers: int = 2, build_seconds: float = 2.0,
                 heartbeat_expiry_s: int = 5, setup_time_s: int = 10) -> None:
        self.base = base
        self.heartbeat_expiry_s = heartbeat_expiry_s
        self.setup_time_s = setup_time_s
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.workers = AnyManagerWorkers(build_seconds)
        self.events = ExecutorEvents(self.workers.on_event)
        self.managers: list[ServingManager] = []
        self.manager_count = managers
        self.submitter: Submitter | None = None

    async def start(self) -> ServingCluster:
        await asyncio.to_thread(self.postgres.start)
        self.redis.start()
        # migrate once here (the managers would wait for each other's migration anyway)
        store = await SqlStore(self.postgres.uri).open()
        await store.close()
        await self.events.start()
        self.managers = [
            ServingManager(i, manager_config(i, self.base / f"manager{i}", self.postgres,
                                             self.redis, self.heartbeat_expiry_s,
                                             self.setup_time_s),
                           self.events.path, self.base / f"manager{i}.log")
            for i in range(self.manager_count)]
        await asyncio.gather(*(m.start() for m in self.managers))
        self.workers.connect([m.grpc_address for m in self.managers])
        self.submitter = Submitter(self.managers)
        return self

    async def close(self) -> None:
        if self.submitter is not None:
            await self.submitter.close()
        await self.workers.close()
        await asyncio.gather(*(m.stop() for m in self.managers))
        await self.events.close()
        self.redis.close()
        await asyncio.to_thread(self.postgres.close)

    def logs(self) -> str:
        return "\n".join(f"--- manager {m.index}\n{m.log_tail()}" for m in self.managers)

    async def records(self, build_ids: list[str], within: float = 120.0, *,
                      strict: bool = True) -> dict[str, BuildRecord]:
        """Every build's record once all have ended (bounded: a safety limit, not a timing
        test); past `within`, an AssertionError, or with strict=False the records as they
        are. Read with a store of its own: the cluster's database may have restarted."""
        deadline = time.monotonic() + within
        phases: Counter[str] = Counter()
        records: dict[str, BuildRecord] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                store = await SqlStore(self.postgres.uri).open()
                try:
                    records = await store.builds.get_many(build_ids)
                finally:
                    await store.close()
                phases = Counter(r.phase.value for r in records.values())
                if len(records) == len(build_ids) and all(
                        r.phase.is_final for r in records.values()):
                    return records
            await asyncio.sleep(0.5)
        if not strict and records:
            return records
        raise AssertionError(f"builds not all final after {within:.0f} s: {dict(phases)}\n"
                             f"{self.logs()}")

    async def completions_logged(self, build_ids: list[str]) -> dict[str, int]:
        """How many times each build's log says `complete`."""
        store = await SqlStore(self.postgres.uri).open()
        try:
            counts = {}
            for build_id in build_ids:
                _, entries = await store.logs.read(build_id)
                counts[build_id] = sum(1 for e in entries
                                       if e.type == "phase" and e.message == "complete")
            return counts
        finally:
            await store.close()


def attempts_lost(records: dict[str, BuildRecord]) -> int:
    """Attempts that ended other than completed (a worker or manager lost, ...)."""
    return sum(1 for r in records.values() for a in r.attempts
               if a.outcome is not None and a.outcome != AttemptEnd.COMPLETED)
