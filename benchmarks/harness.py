"""The driver's side: start the server process, hear the null executor, speak gRPC/HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from benchmarks.common import ROOT, Backend, free_port
from slipway.protocol import buildman_pb2_grpc as pb_grpc

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
START_TIMEOUT = 120.0  # a guard against a server that never comes up


def server_config(
    data_dir: Path,
    backend: Backend,
    *,
    executor: dict[str, Any] | None = None,
    top: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.yaml keys for a benchmark server: capacity never the limit."""
    grpc_port, api_port = free_port(), free_port()
    manager: dict[str, Any] = {
        "EXECUTORS": [executor or {"EXECUTOR": "local", "NAME": "null"}],
        "ALLOWED_WORKER_COUNT": 1_000_000,
        "JOB_REGISTRATION_TIMEOUT": 600,
        "HEARTBEAT_EXPIRY": 120,
        "MACHINE_MAX_TIME": 7200,
        "RETRY_AFTER": 0,
    }
    if backend.redis is not None:
        manager["ORCHESTRATOR"] = dict(backend.redis)
    raw: dict[str, Any] = {
        "DATA_DIR": str(data_dir),
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{grpc_port}",
        "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
        "PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "SERVER_HOSTNAME": "registry.bench:5000",
        "BUILDMAN_HOSTNAME": f"127.0.0.1:{grpc_port}",
        "NAMESPACE_MAX_QUEUED_BUILDS": 1_000_000,
        "BUILD_MANAGER": ["ephemeral", manager],
    }
    if backend.db_uri is not None:
        raw["DB_URI"] = backend.db_uri
    raw.update(top or {})
    return raw


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """The CPU time every core has spent busy since boot (/proc/stat: all but idle and
    iowait): over one build, what the build cost the machine in every process (the
    server, the worker, podman, the registry), and the machine's own background."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLK_TCK


async def machine_quiet(window: float = 0.2, busy_below: float = 0.1,
                        limit: float = 15.0) -> None:
    """Wait (up to `limit` s) for a `window` in which the machine is busy less than
    `busy_below` of a core: what the last build left running (its worker's clean-up and
    exit, the next standby worker's start) then competes with no measured build."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = machine_busy_seconds()
        await asyncio.sleep(window)
        if machine_busy_seconds() - before < busy_below * window:
            return


class ServerProcess:
    """`python -m benchmarks.server_proc` as a child; CPU and RSS read from /proc."""

    def __init__(self, config: dict[str, Any], null_socket: str | None, log_path: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.spec = {"config": config, "null_socket": null_socket}
        self.extra_env = dict(extra_env or {})
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.api_port = 0
        self.grpc_port = 0
        self.token = ""
        self._config_home = ""  # its own XDG_CONFIG_HOME while it runs, removed at stop
        self._profiler: asyncio.subprocess.Process | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def start(self) -> ServerProcess:
        self._config_home = self._config_home or tempfile.mkdtemp(prefix="slipway-bench-xdg-")
        env = {**os.environ, **self.extra_env, "XDG_CONFIG_HOME": self._config_home,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.server_proc", json.dumps(self.spec),
                cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if not line:
            await self.stop()
            raise RuntimeError(f"the benchmark server did not start: "
                               f"{self.log_path.read_text()[-3000:]}")
        ready = json.loads(line)
        self.pid, self.token = ready["pid"], ready["token"]
        self.api_port, self.grpc_port = ready["api_port"], ready["grpc_port"]
        profile_dir = os.environ.get("BENCH_PYSPY_DIR")
        # profiling aid: collapsed stacks of the server, for py-spy users. Non-blocking:
        # pausing the server for each sample slowed a tracking set-up 3.5x
        if profile_dir:
            out = Path(profile_dir) / f"{self.log_path.stem}.txt"
            self._profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(self.pid),
                "-r", "200", "--nonblocking", "--format", "raw", "-o", str(out),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        return self

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE

    async def kill(self) -> None:
        """SIGKILL: ends a server tracking thousands of builds at once (a clean stop
        would give each back to the queue, one transaction each); its state is discarded."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        await self.stop()

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None
        shutil.rmtree(self._config_home, ignore_errors=True)
        self._config_home = ""
        if self._profiler is not None:  # py-spy writes its file when the target exits
            await asyncio.wait_for(self._profiler.wait(), 60)
            self._profiler = None


class ExecutorEvents:
    """Listens on a UNIX socket for the null executor's start_worker lines."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self.dir = tempfile.mkdtemp(prefix="slipway-bench-")
        self.path = str(Path(self.dir) / "executor.sock")
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> ExecutorEvents:
        self._server = await asyncio.start_unix_server(self._handle, self.path)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            self.on_event(json.loads(line))
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def channels(address: str, count: int) -> list[grpc.aio.Channel]:
    """Separate HTTP/2 connections (a local subchannel pool each), many streams on each."""
    options = [("grpc.use_local_subchannel_pool", 1),
               ("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    return [grpc.aio.insecure_channel(address, options=options) for _ in range(count)]


def stubs(chans: list[grpc.aio.Channel]) -> list[pb_grpc.BuildManagerStub]:
    return [pb_grpc.BuildManagerStub(c) for c in chans]


def api_client(server: ServerProcess, connections: int = 64) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=server.api_url, limits=limits, timeout=120,
                             headers={"Authorization": f"Bearer {server.token}"})


async def submit_many(
    client: httpx.AsyncClient,
    count: int,
    *,
    concurrency: int,
    namespaces: int,
    on_submitted: Callable[[str, float], None],
    archive_url: str = "http://127.0.0.1:9/context.tar.gz",
    repo_prefix: str = "r",
    paths: dict[str, str] | None = None,
    admit: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """POST `count` builds, one repository each (one build per repository runs at a time),
    spread over `namespaces` namespaces, `concurrency` requests in flight; each waits for
    `admit(its index)` first, when given."""
    next_index = iter(range(count))

    async def one_lane() -> None:
        for i in next_index:
            if admit is not None:
                await admit(i)
            path = f"/api/v1/repository/ns{i % namespaces:04d}/{repo_prefix}{i:06d}/build/"
            sent = time.time()
            r = await client.post(path, json={"archive_url": archive_url})
            if r.status_code != 201:
                raise RuntimeError(f"submit failed: {r.status_code} {r.text[:300]}")
            build_id = r.json()["id"]
            on_submitted(build_id, sent)
            if paths is not None:
                paths[build_id] = path + build_id

    await asyncio.gather(*(one_lane() for _ in range(concurrency)))


async def wait_until(
    predicate: Callable[[], bool], within: float, what: str,
    poll: Callable[[], Awaitable[None]] | None = None,
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark gave up waiting: {what}")
        if poll is not None:
            await poll()
        await asyncio.sleep(0.05)
