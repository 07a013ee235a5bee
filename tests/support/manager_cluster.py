"""Several real manager processes (tests/support/manager_process.py) sharing one private
PostgreSQL and one private redis-server, and a client side that submits builds the way
the API does (BuildControl with a Redis orchestrator and no local scheduler)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from slipway.domain.phases import Phase
from slipway.manager.control import BuildControl
from slipway.orchestrator.redis import RedisOrchestrator
from slipway.store.facade import SqlStore
from slipway.store.records import BuildRecord, NewBuild
from support.enqueue import enqueue
from support.postgres_server import PostgresServer, free_port
from support.redis_server import RedisServer

SCRIPT = Path(__file__).with_name("manager_process.py")


class ManagerProcess:
    def __init__(self, index: int, base: Path, port: int) -> None:
        self.index = index
        self.dir = base / f"manager{index}"
        self.state = self.dir / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.manager_id = ""

    def start(self, config: dict[str, Any], env: dict[str, str]) -> None:
        path = self.dir / "config.json"
        path.write_text(json.dumps(config))
        (self.state / "ready.json").unlink(missing_ok=True)
        log = open(self.dir / "manager.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(path), str(self.state)],
            stdout=log, stderr=log, env={**os.environ, **env},
        )
        log.close()

    def wait_ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        ready = self.state / "ready.json"
        while not ready.exists():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"manager {self.index} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"manager {self.index} not ready:\n{self.log_tail()}")
            time.sleep(0.05)
        self.manager_id = json.loads(ready.read_text())["manager_id"]

    def readiness(self) -> dict[str, bool]:
        try:
            return dict(json.loads((self.state / "readiness.json").read_text()))
        except (OSError, ValueError):
            return {}

    def journal(self, name: str) -> list[dict[str, Any]]:
        path = self.state / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_tail(self, chars: int = 4000) -> str:
        path = self.dir / "manager.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


class Cluster:
    def __init__(self, base: Path, managers: int, *, build_seconds: float = 0.2,
                 manager: dict[str, Any] | None = None,
                 executor: dict[str, Any] | None = None) -> None:
        self.base = base
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.build_seconds = build_seconds
        self.manager_settings = manager or {}
        self.executor_settings = executor or {}
        ports = [free_port() for _ in range(managers)]
        self.managers = [ManagerProcess(i, base, p) for i, p in enumerate(ports)]
        self.store: SqlStore | None = None
        self.orchestrator: RedisOrchestrator | None = None
        self.control: BuildControl | None = None

    def config(self, m: ManagerProcess) -> dict[str, Any]:
        return {
            "DB_URI": self.postgres.uri,
            "DATA_DIR": str(m.dir / "data"),  # each manager its own signing key
            "GRPC_LISTEN_ADDRESS": m.address,
            "SERVER_HOSTNAME": "registry.test:5000",
            "BUILDMAN_HOSTNAME": "builder.test:50051",  # the tokens' audience, shared
            "BUILD_MANAGER": ["ephemeral", {
                "EXECUTORS": [{"EXECUTOR": "local", "NAME": "null", "SETUP_TIME": 10,
                               **self.executor_settings}],
                "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": self.redis.port},
                "ALLOWED_WORKER_COUNT": 10,
                "JOB_REGISTRATION_TIMEOUT": 10,
                "HEARTBEAT_EXPIRY": 3,
                "RETRY_AFTER": 0,
                **self.manager_settings,
            }],
        }

    async def start(self) -> Cluster:
        self.postgres.start()
        self.redis.start()
        env = {
            "SLIPWAY_TEST_MANAGERS": ",".join(m.address for m in self.managers),
            "SLIPWAY_TEST_BUILD_SECONDS": str(self.build_seconds),
        }
        # migrate once here (the managers would wait for each other's migration anyway)
        self.store = await SqlStore(self.postgres.uri).open()
        for m in self.managers:
            m.start(self.config(m), env)
        for m in self.managers:
            await asyncio.to_thread(m.wait_ready)
        self.orchestrator = RedisOrchestrator(self.redis.config())
        await self.orchestrator.start()
        self.control = BuildControl(self.store, self.orchestrator)
        return self

    async def close(self) -> None:
        for m in self.managers:
            await asyncio.to_thread(m.stop)
        if self.orchestrator is not None:
            await self.orchestrator.close()
        if self.store is not None:
            await self.store.close()
        self.redis.close()
        self.postgres.close()

    async def submit(self, count: int, repositories: int | None = None) -> list[str]:
        assert self.control is not None
        repos = repositories or count

        async def one(i: int) -> str:
            assert self.control is not None
            record = await enqueue(self.control, NewBuild(
                namespace=f"ns{i % 3}", repository=f"repo{i % repos}", tags=["latest"],
                registry="registry.test:5000", archive_url="http://127.0.0.1:9/context.tar"))
            return record.id

        ids: list[str] = []
        for start in range(0, count, 20):
            ids += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 20))))
        return ids

    async def records(self, build_ids: list[str]) -> dict[str, BuildRecord]:
        assert self.store is not None
        return await self.store.builds.get_many(build_ids)

    async def wait_all_final(self, build_ids: list[str], within: float = 120) -> dict[
        str, BuildRecord
    ]:
        """Wait (bounded; a safety limit, not a timing test) until every build has ended;
        tolerates the database being briefly unreachable."""
        deadline = time.monotonic() + within
        while True:
            try:
                records = await self.records(build_ids)
            except Exception:
                records = {}
            if records and all(r.phase.is_final for r in records.values()):
                return records
            if time.monotonic() > deadline:
                phases: dict[str, int] = {}
                for r in records.values():
                    phases[r.phase.value] = phases.get(r.phase.value, 0) + 1
                tails = "\n".join(f"--- manager {m.index}\n{m.log_tail(3000)}"
                                  for m in self.managers)
                raise AssertionError(f"builds not all final: {phases}\n{tails}")
            await asyncio.sleep(0.2)

    async def wait_for(self, predicate: Any, what: str, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                try:
                    result = await result
                except Exception:
                    result = False
            if result:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)

    async def phases_logged(self, build_id: str) -> list[str]:
        assert self.store is not None
        _, entries = await self.store.logs.read(build_id)
        return [e.message for e in entries if e.type == "phase"]

    async def log_messages(self, build_id: str) -> list[str]:
        assert self.store is not None
        _, entries = await self.store.logs.read(build_id)
        return [e.message for e in entries]

    def starts(self) -> list[dict[str, Any]]:
        return [s for m in self.managers for s in m.journal("starts.jsonl")]


def in_flight(records: dict[str, BuildRecord]) -> int:
    return sum(1 for r in records.values() if r.phase is Phase.BUILDING)
