"""Why a build waits, in the build object's status.waiting_for (one build per repository
at a time, the namespace's limit, all workers busy, a retry later), and the build options
(no_cache, pull, labels) kept with the build."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client

from slipway.domain.attempts import AttemptRecord
from slipway.domain.results import AttemptEnd

MANAGER = {"ALLOWED_WORKER_COUNT": 2, "NAMESPACE_LIMITS": {"small": 1},
           "EXECUTORS": [{"EXECUTOR": "local"}]}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, BUILD_MANAGER=["ephemeral", MANAGER]) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def start(c: httpx.AsyncClient, repo: str, **body: Any) -> dict[str, Any]:
    r = await c.post(f"/api/v1/repository/{repo}/build/",
                     json={"archive_url": "https://example.com/c.tar.gz", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def get(c: httpx.AsyncClient, repo: str, build_id: str) -> dict[str, Any]:
    return dict((await c.get(f"/api/v1/repository/{repo}/build/{build_id}")).json())


async def test_waiting_builds_say_why(env: ApiEnv, admin: httpx.AsyncClient) -> None:
    first = await start(admin, "team/app")
    assert first["status"] == {"waiting_for": "a worker is being started for it"}
    second = await start(admin, "team/app")
    # queued behind the first (not running yet): said so at once
    assert second["status"]["waiting_for"] == (
        f"build {first['id']} of team/app is ahead of it in the queue (one build per "
        "repository at a time)")
    (item,) = await env.store.queue.claim("m1", limit=5, lease_seconds=600)
    assert item.build_id == first["id"]
    third = await start(admin, "team/app")
    listing = (await admin.get("/api/v1/repository/team/app/build/")).json()["builds"]
    by_id = {b["id"]: b for b in listing}
    running = (f"build {first['id']} of team/app is running (one build per repository at "
               "a time)")
    assert by_id[second["id"]]["status"]["waiting_for"] == running
    assert by_id[third["id"]]["status"]["waiting_for"] == running

    # the namespace's limit
    small_a = await start(admin, "small/a")
    await env.store.queue.claim("m1", limit=5, lease_seconds=600)  # small/a (team/app busy)
    small_b = await start(admin, "small/b")
    assert small_b["status"]["waiting_for"] == (
        "namespace small runs 1 builds, its limit (NAMESPACE_LIMITS)")
    assert (await get(admin, "small/a", small_a["id"]))["status"] == {}  # not waiting

    # all workers busy: 2 running (team/app, small/a) of ALLOWED_WORKER_COUNT 2
    other = await start(admin, "else/where")
    assert other["status"]["waiting_for"] == "all 2 workers are busy (ALLOWED_WORKER_COUNT)"


async def test_a_retry_waits_until_its_time(env: ApiEnv, admin: httpx.AsyncClient) -> None:
    build = await start(admin, "team/app")
    (item,) = await env.store.queue.claim("m1", limit=1, lease_seconds=600)
    async with env.store.db.write() as conn:
        await env.store.queue.incomplete(conn, item.id, retry_after=3600)
    text = (await get(admin, "team/app", build["id"]))["status"]["waiting_for"]
    assert text.startswith("retry after ") and text.endswith(
        " UTC (its last attempt failed; RETRY_AFTER)")


async def test_a_build_taken_back_at_a_restart_says_so_while_it_waits(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    """Its manager was killed and, restarted, put it back in the queue at once
    (manager/attempts.py take_back_orphans): why it waits names what ended its attempt."""
    build = await start(admin, "team/app")
    (item,) = await env.store.queue.claim("m1", limit=1, lease_seconds=600)
    ended = AttemptRecord(attempt=1, executor="local", worker_id="1", started=time.time()
                          ).closed(AttemptEnd.MANAGER_RESTARTED, time.time())
    async with env.store.db.write() as conn:
        await env.store.queue.incomplete(conn, item.id)
        await env.store.builds.update(conn, build["id"], attempts=[ended])
    waiting = await get(admin, "team/app", build["id"])
    assert waiting["status"]["waiting_for"] == (
        "a worker is being started for it again (attempt 1: the build manager restarted "
        "while it ran)")


async def test_build_options_are_kept_and_shown(env: ApiEnv, admin: httpx.AsyncClient) -> None:
    labels = {"org.opencontainers.image.source": "https://example.com/app", "team": "a"}
    build = await start(admin, "team/app", no_cache=True, pull=True, labels=labels)
    assert build["options"] == {"no_cache": True, "pull": True, "labels": labels}
    record = await env.store.builds.get(build["id"])
    assert record is not None and record.options == build["options"]
    plain = await start(admin, "team/other")
    assert plain["options"] == {}
    r = await admin.post("/api/v1/repository/team/app/build/", json={
        "archive_url": "https://example.com/c.tar.gz", "labels": {"bad key": "x"}})
    assert r.status_code == 400
    assert "label name 'bad key' is not valid" in r.json()["error_message"]
