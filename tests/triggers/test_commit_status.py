"""Commit statuses of triggers' builds, posted to a local server that records GitHub's and
GitLab's status routes: queued, started, success and failure, each with the forge's
state, the context and the link to the build's page; a failing forge is retried and
never touches the build."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.forge import github_delivery, github_example, gitlab_delivery, gitlab_example
from support.status_recorder import StatusRecorder, status_recorder

from slipway.domain.phases import Phase
from slipway.manager.admission import Admission
from slipway.triggers.service import TriggerService

TRIGGERS = "/api/v1/repository/acme/web/trigger/"
STATUS_TOKEN = "ghp_statusTokenThatMustNotLeak123"


@pytest.fixture
def recorder() -> Iterator[StatusRecorder]:
    with status_recorder() as r:
        yield r


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as e:
        yield e


@pytest.fixture
async def writer(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"acme": "write"}, "dev")) as c:
        yield c


def service(env: ApiEnv) -> TriggerService:
    return TriggerService(env.config, env.store, env.store.triggers,
                          Admission(env.config, env.store, env.control))


async def trigger_and_build(env: ApiEnv, c: httpx.AsyncClient, recorder: StatusRecorder,
                            kind: str) -> tuple[dict[str, Any], str, str]:
    api = f"{recorder.url}/api/v3" if kind == "github" else f"{recorder.url}/api/v4"
    r = await c.post(TRIGGERS, json={
        "name": kind, "kind": kind, "git_url": "https://git.example.com/acme/web.git",
        "status_token": STATUS_TOKEN, "status_api_url": api, "status_context": "ci/slipway"})
    assert r.status_code == 201, r.text
    trigger = r.json()
    if kind == "github":
        payload = github_example("push", ref="refs/heads/master", deleted=False)
        body, headers = github_delivery("push", payload, trigger["webhook_secret"])
        sha = payload["after"]
    else:
        payload = gitlab_example("push")
        body, headers = gitlab_delivery("Push Hook", payload, trigger["webhook_secret"])
        sha = payload["checkout_sha"]
    async with client(env.app) as forge:
        answer = await forge.post(httpx.URL(trigger["webhook_url"]).path, content=body,
                                  headers=headers)
    assert answer.status_code == 201, answer.text
    return trigger, answer.json()["build_id"], sha


def posted(recorder: StatusRecorder) -> list[tuple[str, str]]:
    return [(x.body["state"], x.body["description"].split(":")[0])
            for x in recorder.received]


async def test_github_statuses_follow_the_build(env: ApiEnv, writer: httpx.AsyncClient,
                                                recorder: StatusRecorder) -> None:
    _, build_id, sha = await trigger_and_build(env, writer, recorder, "github")
    s = service(env)
    now = time.time()
    await s.tick(now)
    await env.advance(build_id, Phase.BUILD_SCHEDULED)
    await s.tick(now)
    await env.advance(build_id, Phase.BUILDING)
    await s.tick(now)  # still `started`: nothing new to post
    await env.advance(build_id, Phase.COMPLETE)
    await s.tick(now)
    await s.tick(now)
    assert posted(recorder) == [("pending", "queued"), ("pending", "building"),
                                ("success", "image pushed")]
    first = recorder.received[0]
    assert first.forge == "github"
    assert first.path == f"/api/v3/repos/acme/web/statuses/{sha}"
    assert first.headers["authorization"] == f"Bearer {STATUS_TOKEN}"
    assert first.body["context"] == "ci/slipway"
    assert first.body["target_url"] == f"http://127.0.0.1:8700/#/build/acme/web/{build_id}"
    # the final state posted: nothing left to post for the build
    assert await env.store.triggers.status_of(build_id) is None


async def test_gitlab_statuses_and_a_failed_build(env: ApiEnv, writer: httpx.AsyncClient,
                                                  recorder: StatusRecorder) -> None:
    _, build_id, sha = await trigger_and_build(env, writer, recorder, "gitlab")
    s = service(env)
    now = time.time()
    await s.tick(now)
    await env.advance(build_id, Phase.UNPACKING)
    await s.tick(now)
    await env.advance(build_id, Phase.ERROR, error="RUN make: exit 2")
    await s.tick(now)
    assert [x.body["state"] for x in recorder.received] == ["pending", "running", "failed"]
    last = recorder.received[-1]
    assert last.path == f"/api/v4/projects/acme%2Fweb/statuses/{sha}"
    assert last.headers["private-token"] == STATUS_TOKEN
    assert last.body["name"] == "ci/slipway" and last.body["ref"] == "master"
    assert last.body["target_url"].endswith(f"/#/build/acme/web/{build_id}")


async def test_a_failing_forge_is_retried_with_backoff_and_the_build_is_untouched(
    env: ApiEnv, writer: httpx.AsyncClient, recorder: StatusRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, build_id, _ = await trigger_and_build(env, writer, recorder, "github")
    await env.advance(build_id, Phase.COMPLETE)
    recorder.fail_next = 2
    s = service(env)
    now = time.time()
    await s.tick(now)
    assert recorder.failed == 1 and recorder.received == []
    assert (await env.store.triggers.status_of(build_id) or {})["error"].startswith(
        "POST http://")
    await s.tick(now + 1)  # before the backoff's 2 s: not tried
    assert recorder.failed == 1
    await s.tick(now + 2.5)
    assert recorder.failed == 2
    await s.tick(now + 5)  # the second pause is 4 s
    assert recorder.received == []
    await s.tick(now + 7)
    assert posted(recorder) == [("success", "image pushed")]
    build = await env.store.builds.get(build_id)
    assert build is not None and build.phase is Phase.COMPLETE and build.error is None
    assert STATUS_TOKEN not in caplog.text and "HTTP 502" in caplog.text
