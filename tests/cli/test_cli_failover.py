"""`slipway build` (the real CLI, a subprocess) against real manager processes
(tests/cli/manager_with_api.py: API, gRPC and manager, workers that speak the real
protocol) on one PostgreSQL and one Redis: it survives a kill -9 and restart of the only
manager, and a kill -9 of the manager it talks to behind a load balancer (a TCP proxy)
with a second one taking over; it exits 0 once the build completes, each log line
printed once. How long the build waits after the kill is the managers' business (their
leases): the tests assert what the CLI says and its exit code, whatever the wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import CliProcess, log_lines, printed_once_in_order
from support.postgres_server import PostgresServer, free_port, postgres_available
from support.redis_server import RedisServer
from support.tcp_proxy import TcpProxy
from test_cli_builds import write

pytestmark = [pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed"),
              pytest.mark.timeout(600)]

SCRIPT = Path(__file__).with_name("manager_with_api.py")
TESTS = Path(__file__).resolve().parents[1]
TARGET = "registry.test:5000/demo/hello"


class Manager:
    def __init__(self, base: Path, index: int) -> None:
        self.dir = base / f"manager{index}"
        self.dir.mkdir(parents=True)
        self.api_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self, postgres: PostgresServer, redis: RedisServer) -> dict[str, Any]:
        return {
            "DB_URI": postgres.uri, "DATA_DIR": str(self.dir / "data"),
            "API_LISTEN_ADDRESS": f"127.0.0.1:{self.api_port}",
            "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{self.grpc_port}", "PUBLIC_URL": self.url,
            "SERVER_HOSTNAME": "registry.test:5000", "BUILDMAN_HOSTNAME": "builder.test:50051",
            "BUILD_MANAGER": ["ephemeral", {
                "EXECUTORS": [{"EXECUTOR": "local", "NAME": "null", "SETUP_TIME": 5}],
                "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis.port},
                "ALLOWED_WORKER_COUNT": 4, "JOB_REGISTRATION_TIMEOUT": 5,
                "HEARTBEAT_EXPIRY": 3, "RETRY_AFTER": 0}],
        }

    def start(self, config: dict[str, Any], managers: str) -> None:
        path = self.dir / "config.json"
        path.write_text(json.dumps(config))
        env = {**os.environ, "SLIPWAY_TEST_MANAGERS": managers,
               "SLIPWAY_TEST_BUILD_SECONDS": "3", "XDG_CONFIG_HOME": str(self.dir / "xdg"),
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        with open(self.dir / "manager.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(SCRIPT), str(path)],
                                         stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 60
        while "ready" not in (self.dir / "manager.log").read_text(errors="replace"):
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def log(self) -> str:
        return (self.dir / "manager.log").read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def services() -> Iterator[tuple[PostgresServer, RedisServer]]:
    postgres, redis = PostgresServer(), RedisServer()
    postgres.start()
    redis.start()
    try:
        yield postgres, redis
    finally:
        redis.close()
        postgres.close()


def server_log(url: str, token: str, build_id: str) -> list[str]:
    response = httpx.get(f"{url}/api/v1/repository/demo/hello/build/{build_id}/logs",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return log_lines(response.json()["logs"])


def build_id_of(cli: CliProcess) -> str:
    line = next(x for x in cli.stdout.splitlines() if x.startswith("Build "))
    return line.split()[1]


def test_build_survives_kill_9_and_restart_of_its_manager(
    tmp_path: Path, services: tuple[PostgresServer, RedisServer]
) -> None:
    postgres, redis = services
    manager = Manager(tmp_path, 0)
    config = manager.config(postgres, redis)
    managers = f"127.0.0.1:{manager.grpc_port}"
    manager.start(config, managers)
    token = (manager.dir / "data" / "admin-token").read_text().strip()
    write(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n"})
    cli = CliProcess(tmp_path, ["build", str(tmp_path / "ctx"), "-t", TARGET,
                                "--server", manager.url], {"SLIPWAY_TOKEN": token})
    try:
        cli.wait_for("line a of")
        manager.kill()
        cli.wait_for("reconnecting (up to 5m)...", stream="stderr")
        manager.start(config, managers)
        code = cli.wait()
        build_id = build_id_of(cli)
        expected = server_log(manager.url, token, build_id)
    finally:
        cli.kill()
        manager.stop()
    assert code == 0, f"{cli.stdout}\n{cli.stderr}\n{manager.log()}"
    assert printed_once_in_order(cli.stdout, expected), cli.stdout
    assert f"pushed {TARGET}:latest" in cli.stdout
    assert f"reconnected; following build {build_id}" in cli.stderr


def test_build_follows_the_switch_to_a_second_manager(
    tmp_path: Path, services: tuple[PostgresServer, RedisServer]
) -> None:
    postgres, redis = services
    first, second = Manager(tmp_path, 0), Manager(tmp_path, 1)
    managers = f"127.0.0.1:{first.grpc_port},127.0.0.1:{second.grpc_port}"
    first.start(first.config(postgres, redis), managers)
    second.start(second.config(postgres, redis), managers)
    token = (first.dir / "data" / "admin-token").read_text().strip()
    proxy = TcpProxy([first.api_port, second.api_port])  # the load balancer
    write(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n"})
    cli = CliProcess(tmp_path, ["build", str(tmp_path / "ctx"), "-t", TARGET,
                                "--server", proxy.url], {"SLIPWAY_TOKEN": token})
    try:
        cli.wait_for("line a of")
        first.kill()
        code = cli.wait()
        build_id = build_id_of(cli)
        expected = server_log(second.url, token, build_id)
    finally:
        cli.kill()
        proxy.close()
        second.stop()
    assert code == 0, f"{cli.stdout}\n{cli.stderr}\n{second.log()}"
    assert printed_once_in_order(cli.stdout, expected), cli.stdout
    assert f"pushed {TARGET}:latest" in cli.stdout
