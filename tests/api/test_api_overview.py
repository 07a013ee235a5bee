"""slipway's routes for the web UI: the token's user, repositories, the phase filter, the
manager's state, build again; and the page itself being served."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from support.api_app import ApiEnv, api_env, client

from slipway.domain.phases import Phase
from slipway.store.schema import uploads

SECRET = "pull-s3cret-value"
MANAGER = ["ephemeral", {
    "ALLOWED_WORKER_COUNT": 3,
    "NAMESPACE_LIMITS": {"acme": 2},
    "EXECUTORS": [{"EXECUTOR": "local", "NAME": "here"},
                  {"EXECUTOR": "kubernetesPodman", "NAME": "k8s",
                   "K8S_API_SERVER": "k8s.example:6443", "BUILDER_NAMESPACE": "builder"}],
}]


@pytest.fixture(params=["sqlite", "postgresql"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApiEnv]:
    """Over both stores: the listings' SQL (grouping, row-value IN) differs by dialect."""
    database: dict[str, Any] = {}
    if request.param == "postgresql":
        database["DB_URI"] = request.getfixturevalue("postgres").create_database()
    async with api_env(tmp_path, BUILD_MANAGER=MANAGER, **database) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def start(c: httpx.AsyncClient, ns: str, repo: str, **body: Any) -> dict[str, Any]:
    body.setdefault("archive_url", "https://example.com/context.tar.gz")
    r = await c.post(f"/api/v1/repository/{ns}/{repo}/build/", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def finish(env: ApiEnv, build_id: str, phase: Phase, attempts: list[dict[str, Any]],
                 **values: Any) -> None:
    """Play the manager: the build ends in `phase` after `attempts`."""
    await env.advance(build_id, phase, attempts=attempts, completed=time.time(), **values)


async def test_user_names_the_token_and_its_scopes(env: ApiEnv) -> None:
    async with client(env.app, await env.token({"acme": "write"}, "ci-bot")) as c:
        r = await c.get("/api/v1/user/")
    assert r.status_code == 200
    assert r.json() == {"anonymous": False, "username": "ci-bot", "scopes": {"acme": "write"}}
    async with client(env.app, "slw_not-a-token") as c:
        r = await c.get("/api/v1/user/")
    assert r.status_code == 401
    assert r.json()["error_message"] == "the API token is not valid"


async def test_repositories_with_their_newest_build_only_where_the_token_reads(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    await start(admin, "acme", "web", docker_tags=["old"])
    newest = await start(admin, "acme", "web", docker_tags=["new"],
                         pull_credentials={"username": "u", "password": SECRET})
    done = await start(admin, "acme", "api")
    await finish(env, done["id"], Phase.COMPLETE, [], image_digest="sha256:" + "a" * 64)
    await start(admin, "other", "secret-repo")

    r = await admin.get("/api/v1/repository")
    assert r.status_code == 200
    assert SECRET not in r.text
    repos = {(x["namespace"], x["name"]): x for x in r.json()["repositories"]}
    assert set(repos) == {("acme", "web"), ("acme", "api"), ("other", "secret-repo")}
    web = repos[("acme", "web")]
    assert (web["build_count"], web["active_builds"]) == (2, 2)
    assert web["last_build"]["id"] == newest["id"]
    assert web["last_build"]["tags"] == ["new"]
    api = repos[("acme", "api")]
    assert (api["active_builds"], api["last_build"]["phase"]) == (0, "complete")

    async with client(env.app, await env.token({"acme": "read"})) as reader:
        r = await reader.get("/api/v1/repository")
        assert {x["namespace"] for x in r.json()["repositories"]} == {"acme"}
        r = await reader.get("/api/v1/repository", params={"namespace": "other"})
        assert r.json()["repositories"] == []


async def test_build_list_filters_by_phase(env: ApiEnv, admin: httpx.AsyncClient) -> None:
    waiting = await start(admin, "acme", "web")
    ok = await start(admin, "acme", "web")
    failed = await start(admin, "acme", "web")
    await finish(env, ok["id"], Phase.COMPLETE, [])
    await finish(env, failed["id"], Phase.INTERNAL_ERROR, [], retries_remaining=0)

    async def ids(**params: Any) -> set[str]:
        r = await admin.get("/api/v1/repository/acme/web/build/", params={"limit": 50, **params})
        assert r.status_code == 200, r.text
        return {b["id"] for b in r.json()["builds"]}

    assert await ids() == {waiting["id"], ok["id"], failed["id"]}
    assert await ids(phase="complete") == {ok["id"]}
    assert await ids(phase="waiting,building") == {waiting["id"]}
    assert await ids(phase=["error", "expired"]) == {failed["id"]}
    r = await admin.get("/api/v1/repository/acme/web/build/", params={"phase": "finished"})
    assert r.status_code == 400
    assert "'finished' is not a phase" in r.json()["error_message"]


async def test_manager_state_workers_queue_and_failures(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    running = await start(admin, "acme", "web")
    await env.advance(running["id"], Phase.BUILDING, executor="here")
    await env.store.queue.claim("manager-1", limit=1, lease_seconds=60)
    await start(admin, "acme", "api")
    await start(admin, "other", "x")
    broken = await start(admin, "acme", "broken")
    now = time.time()
    await finish(env, broken["id"], Phase.ERROR, [
        {"attempt": 1, "executor": "here", "started": now - 5, "ended": now - 1,
         "outcome": "user_error"}], error="RUN exit 7")
    flaky = await start(admin, "other", "flaky")
    await finish(env, flaky["id"], Phase.INTERNAL_ERROR, [
        {"attempt": 1, "executor": "k8s", "started": now - 9, "ended": now - 8,
         "outcome": "heartbeat_lost"},
        {"attempt": 2, "executor": "here", "started": now - 7, "ended": now - 6,
         "outcome": "heartbeat_lost"},
        {"attempt": 3, "executor": "here", "started": now - 5, "ended": now - 4,
         "outcome": "never_registered"}], retries_remaining=0,
        error="the build worker never registered")
    old = await start(admin, "acme", "old")
    await env.advance(old["id"], Phase.ERROR, completed=now - 3 * 86400, attempts=[
        {"attempt": 1, "executor": "here", "started": now - 3 * 86400,
         "ended": now - 3 * 86400, "outcome": "user_error"}])

    r = await admin.get("/api/v1/manager")
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["builds_enabled"] is True
    assert state["workers"]["allowed_worker_count"] == 3
    assert state["workers"]["running"] == 1
    assert state["workers"]["by_executor"] == [
        {"name": "here", "executor": "local", "running": 1},
        {"name": "k8s", "executor": "kubernetesPodman", "running": 0},
    ]
    queue = {q["namespace"]: q for q in state["queue"]}
    # acme: web is held by a manager, api waits (broken and old were never dequeued here)
    assert queue["acme"]["running"] == 1
    assert queue["acme"]["limit"] == 2
    assert queue["other"]["limit"] is None
    reasons = {f["reason"]: f for f in state["failures"]["reasons"]}
    assert set(reasons) == {"heartbeat_lost", "user_error", "never_registered"}
    assert reasons["heartbeat_lost"]["count"] == 2
    assert reasons["heartbeat_lost"]["executors"] == {"k8s": 1, "here": 1}
    assert reasons["heartbeat_lost"]["description"] == (
        "the build worker stopped sending heartbeats")
    assert reasons["user_error"]["count"] == 1  # the 3-day-old failure is outside 24 h
    assert reasons["user_error"]["example"]["error"] == "RUN exit 7"
    assert reasons["never_registered"]["example"]["id"] == flaky["id"]
    assert state["failures"]["reasons"][0]["reason"] == "heartbeat_lost"  # most first
    # the build's own failure apart from the service's
    assert reasons["user_error"]["kind"] == "user"
    assert {reasons[r]["kind"] for r in ("heartbeat_lost", "never_registered")} == {
        "infrastructure"}
    assert state["failures"]["user_errors"] == 1
    assert state["failures"]["infrastructure_failures"] == 3
    # each reason's newest attempts, newest first, with the build to open
    assert [(f["id"], f["attempt"], f["executor"]) for f in
            reasons["heartbeat_lost"]["recent"]] == [(flaky["id"], 2, "here"),
                                                    (flaky["id"], 1, "k8s")]
    assert reasons["user_error"]["recent"] == [{
        "id": broken["id"], "namespace": "acme", "repository": "broken", "phase": "error",
        "error": "RUN exit 7", "attempt": 1, "executor": "here", "ended": now - 1}]

    r = await admin.get("/api/v1/manager", params={"hours": 24 * 7})
    assert {f["reason"]: f["count"] for f in r.json()["failures"]["reasons"]}["user_error"] == 2

    async with client(env.app, await env.token({"acme": "read"})) as reader:
        state = (await reader.get("/api/v1/manager")).json()
    assert {q["namespace"] for q in state["queue"]} == {"acme"}
    assert {f["reason"] for f in state["failures"]["reasons"]} == {"user_error"}


async def test_build_again_copies_what_the_api_never_shows(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    drop = (await admin.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})).json()
    put = await admin.put(httpx.URL(drop["url"]).raw_path.decode(), content=b"FROM scratch\n")
    assert put.status_code == 200
    first = await start(
        admin, "acme", "web", archive_url=None, file_id=drop["file_id"],
        docker_tags=["v1", "latest"], build_args={"VERSION": "1.2"}, target="final",
        pull_credentials={"username": "puller", "password": SECRET},
        dockerfile_path="sub/Dockerfile",
    )
    await finish(env, first["id"], Phase.ERROR, [])
    async with client(env.app, await env.token({"acme": "write"}, "rebuilder")) as writer:
        r = await writer.post(f"/api/v1/repository/acme/web/build/{first['id']}/rebuild")
    assert r.status_code == 201, r.text
    assert SECRET not in r.text
    again = r.json()
    assert again["id"] != first["id"]
    assert r.headers["location"].endswith(f"/build/{again['id']}/status")
    assert (again["phase"], again["tags"], again["manual_user"]) == (
        "waiting", ["v1", "latest"], "rebuilder")
    old, new = (await env.store.builds.get(first["id"])), (await env.store.builds.get(again["id"]))
    assert old is not None and new is not None
    for name in ("build_args", "target", "pull_credentials", "resource_key", "context",
                 "dockerfile_path", "registry"):
        assert getattr(new, name) == getattr(old, name), name

    async with client(env.app, await env.token({"acme": "read"})) as reader:
        r = await reader.post(f"/api/v1/repository/acme/web/build/{first['id']}/rebuild")
    assert r.status_code == 403
    r = await admin.post("/api/v1/repository/acme/web/build/nope/rebuild")
    assert r.status_code == 404

    async with env.store.db.write() as conn:
        await conn.execute(delete(uploads).where(uploads.c.file_id == drop["file_id"]))
    r = await admin.post(f"/api/v1/repository/acme/web/build/{first['id']}/rebuild")
    assert r.status_code == 400
    assert "no longer on this server" in r.json()["error_message"]


async def test_the_page_is_served_with_a_strict_content_security_policy(env: ApiEnv) -> None:
    async with client(env.app) as anonymous:
        page = await anonymous.get("/")
        script = await anonymous.get("/ui/app.js")
        missing = await anonymous.get("/ui/nothing.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404
