"""A PostgreSQL outage (fast shutdown, a few seconds, then a start) under two managers with
builds running and clients calling the API (issue 25): no running build is lost, every
API answer during the outage is 503 with the API's JSON error and Retry-After (never a
500), workers' calls are answered UNAVAILABLE and retried, and both managers are ready
once the database is back. After a restart, the first statement on each pooled connection
(all dead) runs again on a fresh one instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from support.fault_figures import FaultFigures
from support.outage import (
    ApiProbe,
    ScriptedBuilds,
    api_client,
    running_servers,
    server_config,
    wait_until,
)
from support.postgres_server import PostgresServer, postgres_available
from support.redis_server import RedisServer

from slipway.manager.call_outages import outage_of
from slipway.manager.worker_env import worker_retry_window
from slipway.orchestrator.base import OrchestratorError
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import BuildManagerStub
from slipway.server import SlipwayServer
from slipway.store import database
from slipway.store.errors import StoreFull, StoreUnavailable, unavailable_error
from slipway.store.facade import SqlStore
from slipway.tokens.jwt import TokenType

pytestmark = [
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]

# trust authentication ignores it; it is here to prove no message shows it
PASSWORD = "s3cret-Pw"
BUILDS = 8
OUTAGE_S = 3.0
ARCHIVE = {"archive_url": "https://example.com/context.tar.gz"}


def with_password(uri: str) -> str:
    user, _, rest = uri.removeprefix("postgresql://").partition("@")
    return f"postgresql://{user}:{PASSWORD}@{rest}"


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and restarted (conftest's `postgres` is
    shared by a module)."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def phases_of(client: httpx.AsyncClient, repo: str, build_id: str) -> list[str]:
    response = await client.get(f"/api/v1/repository/ns/{repo}/build/{build_id}/logs")
    return [e["message"] for e in response.json()["logs"] if e.get("type") == "phase"]


async def test_a_postgresql_outage_loses_no_build_and_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
    private_postgres: PostgresServer, redis: RedisServer, fault_figures: FaultFigures,
) -> None:
    postgres = private_postgres
    caplog.set_level(logging.WARNING)
    builds = ScriptedBuilds()
    orchestrator = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis.port}
    configs = [server_config(tmp_path, f"manager{i}", DB_URI=with_password(postgres.uri),
                             manager={"ORCHESTRATOR": orchestrator})
               for i in range(2)]
    async with running_servers(configs, builds) as servers:
        token = servers[0].admin_token
        assert token is not None
        clients = [api_client(server, token) for server in servers]
        try:
            accepted: list[tuple[str, str]] = []
            for i in range(BUILDS):
                response = await clients[i % 2].post(
                    f"/api/v1/repository/ns/repo{i}/build/", json=ARCHIVE)
                assert response.status_code == 201, response.text
                accepted.append((f"repo{i}", response.json()["id"]))

            async def all_building() -> bool:
                for repo, build_id in accepted:
                    status = await clients[0].get(
                        f"/api/v1/repository/ns/{repo}/build/{build_id}/status")
                    if status.json()["phase"] != "building":
                        return False
                return True

            await wait_until(all_building, "every build to be building", within=60)
            some_repo, some_build = accepted[0]
            reads = ApiProbe(clients, [
                ("GET", f"/api/v1/repository/ns/{some_repo}/build/", None),
                ("GET", f"/api/v1/repository/ns/{some_repo}/build/{some_build}/status",
                 None),
                ("GET", f"/api/v1/repository/ns/{some_repo}/build/{some_build}/logs",
                 None),
            ])
            # writes only while the database is down: all refused (a build accepted
            # then would test the scheduler's outage, not the API's)
            writes = ApiProbe(clients, [
                ("POST", "/api/v1/repository/ns/probe/build/", ARCHIVE),
                ("POST", "/api/v1/filedrop/", {"mimeType": "application/gzip"}),
            ])

            # the outage: PostgreSQL's fast shutdown ends every session, as
            # `pg_ctl stop -m fast` does, while clients (some reads in flight as it
            # stops) and workers go on calling
            stop_probing = asyncio.Event()
            reading = asyncio.get_running_loop().create_task(
                reads.run_until(stop_probing, pause=0.02))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(postgres.stop)
            during = await reads.call_all() + await writes.call_all()
            writing = asyncio.get_running_loop().create_task(
                writes.run_until(stop_probing))
            ready_during = [await c.get("/readyz") for c in clients]
            worker_call = await cached_tag_call(servers, builds)
            await asyncio.sleep(OUTAGE_S)
            stop_probing.set()
            await reading
            await writing
            await asyncio.to_thread(postgres.start)
            builds.release.set()

            # what a client saw while the database was down
            assert {a.status for a in during} == {503}, during
            for answer in during:
                assert answer.is_json and answer.retry_after is not None, answer
                assert "the database (DB_URI postgresql://" in answer.message, answer
                assert "is not answering; try again in" in answer.message, answer
                assert PASSWORD not in answer.message, answer
            for ready in ready_during:
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] is False
            assert worker_call[0] is grpc.StatusCode.UNAVAILABLE, worker_call
            assert worker_call[1] > 0  # the retry hint
            answers = reads.answers + writes.answers
            statuses = reads.statuses() + writes.statuses()
            assert statuses[500] == 0, answers
            assert set(reads.statuses()) <= {200, 503}, reads.statuses()
            assert set(writes.statuses()) == {503}, writes.statuses()
            bad = [a for a in answers if a.status == 503
                   and not (a.is_json and a.retry_after)]
            assert not bad, bad

            # afterwards: both managers ready, new builds accepted, every build once
            await wait_until(lambda: all_ready(clients), "both managers ready", within=30)
            for i, client in enumerate(clients):
                response = await client.post(
                    f"/api/v1/repository/ns/after{i}/build/", json=ARCHIVE)
                assert response.status_code == 201, response.text
                accepted.append((f"after{i}", response.json()["id"]))

            async def all_final() -> bool:
                for repo, build_id in accepted:
                    status = await clients[0].get(
                        f"/api/v1/repository/ns/{repo}/build/{build_id}/status")
                    if status.json()["phase"] not in ("complete", "error",
                                                      "internalerror", "cancelled"):
                        return False
                return True

            await wait_until(all_final, "every accepted build to end", within=60)
            phases: Counter[str] = Counter()
            lost = 0
            for repo, build_id in accepted:
                build = (await clients[1].get(
                    f"/api/v1/repository/ns/{repo}/build/{build_id}")).json()
                phases[build["phase"]] += 1
                lost += sum(1 for a in build["attempts"] if a["outcome"] != "completed")
                assert (await phases_of(clients[0], repo, build_id)).count("complete") \
                    == 1, build
            retries = sum(1 for r in caplog.records if r.name == "slipway.worker"
                          and "UNAVAILABLE" in r.getMessage())
            tracebacks = [r for r in caplog.records if r.exc_info and (
                r.name.startswith("slipway.api") or r.name.startswith("uvicorn"))]
            fault_figures({
                "accepted": len(accepted), "complete": phases["complete"],
                "attempts_lost": lost, "api_calls": len(answers),
                "status_503": statuses[503], "status_500": statuses[500],
                "worker_retries": retries,
                "workers_gave_up": sum(1 for _, code in builds.exits if code)})
            assert phases == {"complete": len(accepted)}
            assert lost == 0
            assert all(code == 0 for _, code in builds.exits), builds.exits
            assert not tracebacks
        finally:
            for client in clients:
                await client.aclose()


async def all_ready(clients: list[httpx.AsyncClient]) -> bool:
    for client in clients:
        if (await client.get("/readyz")).status_code != 200:
            return False
    return True


async def cached_tag_call(servers: list[SlipwayServer], builds: ScriptedBuilds
                          ) -> tuple[grpc.StatusCode, float]:
    """A worker call that reads the database (DetermineCachedTag), with a job token of a
    running build: its status and retry hint."""
    # one executor per server, made in the servers' order
    index = next(i for i, e in enumerate(builds.executors) if e.started)
    spec = builds.executors[index].started[0]
    tokens = servers[index].tokens
    assert tokens is not None
    job_token = tokens.mint(TokenType.JOB, spec.build_id, spec.job_id, 60)
    async with grpc.aio.insecure_channel(spec.manager_address) as channel:
        try:
            await BuildManagerStub(channel).DetermineCachedTag(
                pb.CachedTagRequest(job_jwt=job_token), timeout=20)
        except grpc.aio.AioRpcError as exc:
            hint = dict(exc.trailing_metadata() or ()).get("retry-after-s", "0")
            return exc.code(), float(hint)
    return grpc.StatusCode.OK, 0.0


async def test_after_a_restart_the_first_statement_on_each_dead_connection_is_run_again(
    private_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL restarted between two uses of a pooled connection: the read and the
    write that meet a dead connection run again on a fresh one, the caller sees no error;
    while it is down they fail as StoreUnavailable, naming the database."""
    # no connection counts as idle, so none is pinged before use: each restart leaves
    # the pool's connections dead for the next statement to find
    monkeypatch.setattr(database, "PING_IF_IDLE_S", 3600.0)
    caplog.set_level(logging.DEBUG, logger="slipway.store")
    postgres = private_postgres
    store = await SqlStore(with_password(postgres.uri)).open()
    try:
        await store.tokens.add("hash-1", "first", {"*": "read"})
        assert await store.tokens.find("hash-1") is not None  # the pool holds connections
        await asyncio.to_thread(postgres.restart)
        assert (await store.tokens.find("hash-1")) is not None
        await asyncio.to_thread(postgres.restart)
        await store.tokens.add("hash-2", "second", {"*": "read"})
        assert (await store.tokens.find("hash-2")) is not None

        await asyncio.to_thread(postgres.stop)
        with pytest.raises(StoreUnavailable) as caught:
            await store.tokens.find("hash-1")
        assert "DB_URI postgresql://" in caught.value.message
        assert PASSWORD not in caught.value.message and "*****" in caught.value.message
        await asyncio.to_thread(postgres.start)
        assert (await store.tokens.find("hash-2")) is not None
        reruns = sum(1 for r in caplog.records if "running it again" in r.getMessage())
        print(f"restart: operations run again on a fresh connection: {reruns} "
              "(2 restarts, 1 stop), errors seen by the caller after a restart: 0")
        assert reruns >= 2
    finally:
        await store.close()


def test_which_driver_errors_are_an_outage_and_what_they_say() -> None:
    uri = "postgresql://slipway:" + PASSWORD + "@db.example:5432/builds"
    died = OperationalError("SELECT 1", {}, Exception("terminating connection due to "
                                                      "administrator command"),
                            connection_invalidated=True)
    lost = unavailable_error(died, uri)
    assert lost is not None and lost.rerun_safe and not lost.commit_unknown
    assert lost.message == ("the database (DB_URI postgresql://slipway:*****@db.example:5432/"
                            "builds) is not answering; try again in 5 s")
    in_commit = unavailable_error(died, uri, in_commit=True)
    assert in_commit is not None and not in_commit.rerun_safe and in_commit.commit_unknown
    refused = unavailable_error(OperationalError("connect", {}, Exception("refused")), uri)
    assert refused is not None and not refused.rerun_safe

    sqlite_uri = "sqlite:////data/slipway.db"
    full = unavailable_error(OperationalError(
        "INSERT", {}, sqlite3.OperationalError("database or disk is full")), sqlite_uri)
    assert isinstance(full, StoreFull) and "disk full" in full.message
    cannot_open = unavailable_error(OperationalError(
        "SELECT", {}, sqlite3.OperationalError("unable to open database file")), sqlite_uri)
    assert cannot_open is not None and not isinstance(cannot_open, StoreFull)
    # a bad statement is the caller's to see as it is
    assert unavailable_error(OperationalError(
        "SELECT", {}, sqlite3.OperationalError("no such table: x")), sqlite_uri) is None
    assert unavailable_error(IntegrityError("INSERT", {}, Exception("duplicate")), uri) is None


def test_worker_calls_meeting_an_outage_are_unavailable_with_a_hint() -> None:
    store_down = outage_of(StoreUnavailable("the database (DB_URI x) is not answering"))
    redis_down = outage_of(OrchestratorError("Redis at 127.0.0.1:6379: connection refused"))
    assert store_down is not None and redis_down is not None
    assert dict(store_down.trailing_metadata) == {"retry-after-s": "5"}
    assert "the orchestrator is not answering" in redis_down.message
    assert outage_of(ValueError("a bug")) is None
    # a worker gives up before its manager would take it for gone
    assert worker_retry_window(60) == 57
    assert worker_retry_window(600) == 60
    assert worker_retry_window(3) == 1
