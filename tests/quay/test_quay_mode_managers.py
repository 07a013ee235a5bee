"""Several slipway managers (real processes, tests/support/manager_process.py) on one
Quay database: every build Quay's web app enqueues runs once, and Quay shows each
`complete` with its log in BUILDLOGS_REDIS once (docs/quay-contract.md)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from support.manager_cluster import ManagerProcess
from support.postgres_server import free_port
from support.quay_db import SECRET_KEY, QuayDatabase
from support.redis_server import RedisServer


def manager_config(quay: QuayDatabase, redis_port: int, m: ManagerProcess) -> dict[str, Any]:
    return {
        "DB_URI": quay.uri,
        "DATA_DIR": str(m.dir / "data"),
        "GRPC_LISTEN_ADDRESS": m.address,
        "SERVER_HOSTNAME": quay.server_hostname,
        "BUILDMAN_HOSTNAME": "builder.test:50051",  # the tokens' audience, shared
        "BUILDLOGS_REDIS": {"host": "127.0.0.1", "port": redis_port},
        "DISTRIBUTED_STORAGE_CONFIG": {"local_us": ["LocalStorage",
                                                    {"storage_path": str(m.dir)}]},
        "DATABASE_SECRET_KEY": SECRET_KEY,
        "BUILD_MANAGER": ["ephemeral", {
            "EXECUTORS": [{"EXECUTOR": "local", "NAME": "null", "SETUP_TIME": 10}],
            "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis_port},
            "ALLOWED_WORKER_COUNT": 10,
            "JOB_REGISTRATION_TIMEOUT": 10,
            "HEARTBEAT_EXPIRY": 3,
            "RETRY_AFTER": 0,
        }],
    }


async def test_two_managers_on_one_quay_database_run_each_build_once(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    ports = [free_port(), free_port()]
    managers = [ManagerProcess(i, tmp_path, port) for i, port in enumerate(ports)]
    env = {"SLIPWAY_TEST_MANAGERS": ",".join(m.address for m in managers),
           "SLIPWAY_TEST_BUILD_SECONDS": "0.2"}
    builds = []
    for r in range(4):
        quay.repository("acme", f"repo{r}")
    for i in range(12):  # three builds per repository: they run one after the other
        builds.append(quay.start_build("acme", f"repo{i % 4}",
                                       archive_url="http://context.test/c.tar.gz"))
    try:
        for m in managers:
            m.start(manager_config(quay, redis_server.port, m), env)
        for m in managers:
            await asyncio.to_thread(m.wait_ready)
        deadline = time.monotonic() + 120
        while True:
            phases = {b.uuid: quay.build_row(b.uuid)["phase"] for b in builds}
            if all(p in ("complete", "error", "internalerror") for p in phases.values()):
                break
            assert time.monotonic() < deadline, (phases, managers[0].log_tail())
            await asyncio.sleep(0.2)
        logs = await quay_logs(redis_server.port, [b.uuid for b in builds])
    finally:
        for m in managers:
            await asyncio.to_thread(m.stop)
    assert set(phases.values()) == {"complete"}, phases
    started = Counter(s["build_id"] for m in managers for s in m.journal("starts.jsonl"))
    assert started == Counter({b.uuid: 1 for b in builds})
    assert quay.queue_rows("dockerfilebuild/%") == []
    for b in builds:
        phases_logged = [e["message"] for e in logs[b.uuid] if e.get("type") == "phase"]
        assert phases_logged == ["build-scheduled", "unpacking", "pulling", "building",
                                 "pushing", "complete"], phases_logged


async def quay_logs(redis_port: int, uuids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each build's entries in BUILDLOGS_REDIS, once the last is its `complete`."""
    client = aioredis.Redis(host="127.0.0.1", port=redis_port)
    deadline = time.monotonic() + 30
    try:
        while True:
            logs = {u: [json.loads(e) for e in await client.lrange(f"builds/{u}/logs", 0, -1)]
                    for u in uuids}
            if all(entries and entries[-1]["message"] == "complete"
                   for entries in logs.values()):
                return logs
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


async def test_a_running_builds_lease_keeps_moving_with_a_short_heartbeat_expiry(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    """With HEARTBEAT_EXPIRY 3 the heartbeats push the lease to a few seconds ahead,
    less than Quay's 20 s minimum extension: the lease must still move, or another
    manager could claim the item of a build that is still running."""
    manager = ManagerProcess(0, tmp_path, free_port())
    quay.repository("acme", "long")
    started = quay.start_build("acme", "long", archive_url="http://context.test/c.tar.gz")
    env = {"SLIPWAY_TEST_MANAGERS": manager.address, "SLIPWAY_TEST_BUILD_SECONDS": "40"}
    config = manager_config(quay, redis_server.port, manager)
    try:
        manager.start(config, env)
        await asyncio.to_thread(manager.wait_ready)
        deadline = time.monotonic() + 60
        while quay.build_row(started.uuid)["phase"] != "building":
            assert time.monotonic() < deadline, manager.log_tail()
            await asyncio.sleep(0.2)
        # past the claim's lease (registration timeout + set-up + margin: 26 s)
        end = time.monotonic() + 32
        while time.monotonic() < end:
            row = quay.queue_row(started.queue_id)
            assert row is not None
            with quay.connect() as conn:
                alive = conn.execute("SELECT processing_expires > (now() AT TIME ZONE 'utc') "
                                     "AS ok FROM queueitem WHERE id = %s",
                                     (started.queue_id,)).fetchone()
            assert alive is not None and alive["ok"], row
            await asyncio.sleep(1)
    finally:
        await asyncio.to_thread(manager.stop)
