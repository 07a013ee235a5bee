"""Scheduled rebuilds and the base-image watch, run by two trigger services sharing one
store (two managers): a due schedule starts exactly one build of the branch's head (read
from a real `git http-backend`), and a FROM image whose digest moves in a real
docker-registry starts exactly one build."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.git_server import HttpGitServer, bare_repository, commit_files, git, http_git_server
from support.images import podman_argv
from support.registry import Registry

from slipway.manager.admission import Admission
from slipway.triggers.service import TriggerService

TRIGGERS = "/api/v1/repository/acme/web/trigger/"
BUILDS = "/api/v1/repository/acme/web/build/"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[HttpGitServer]:
    with http_git_server(tmp_path / "git") as server:
        bare_repository(tmp_path / "git", "web.git")
        yield server


def push_files(tmp_path: Path, forge: HttpGitServer, files: dict[str, str]) -> str:
    work = tmp_path / "work"
    if not work.exists():
        git("clone", "--quiet", forge.authed_url("web.git"), str(work))
    commit = commit_files(work, files, "change")
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return commit


def managers(env: ApiEnv) -> list[TriggerService]:
    return [TriggerService(env.config, env.store, env.store.triggers,
                           Admission(env.config, env.store, env.control)) for _ in range(2)]


async def builds(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await c.get(BUILDS, params={"limit": 100})
    return list(r.json()["builds"])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as e:
        yield e


async def test_a_due_schedule_starts_one_build(tmp_path: Path, env: ApiEnv,
                                               forge: HttpGitServer) -> None:
    head = push_files(tmp_path, forge, {"Dockerfile": "FROM scratch\n"})
    async with client(env.app, await env.token({"acme": "write"})) as c:
        r = await c.post(TRIGGERS, json={
            "name": "nightly", "kind": "github", "git_url": forge.url("web.git"),
            "token": forge.token,
            "schedule": {"cron": "0 3 * * *", "pull": True, "no_cache": True}})
        assert r.status_code == 201, r.text
        trigger = r.json()
        due = trigger["next_run"]
        assert due is not None and due % 86400 == 3 * 3600

        first, second = managers(env)
        await asyncio.gather(first.run_schedules(due - 1), second.run_schedules(due - 1))
        assert await builds(c) == []
        await asyncio.gather(first.run_schedules(due + 1), second.run_schedules(due + 1))
        await asyncio.gather(first.run_schedules(due + 2), second.run_schedules(due + 2))
        [build] = await builds(c)
        assert build["trigger_metadata"]["commit"] == head
        assert build["trigger_metadata"]["cause"] == "schedule"
        assert build["options"]["pull"] is True and build["options"]["no_cache"] is True
        r = await c.get(f"{TRIGGERS}{trigger['id']}")
        assert r.json()["next_run"] == due + 86400
        shown = (await c.get(f"{TRIGGERS}{trigger['id']}/deliveries")).json()["deliveries"]
        assert [(d["event"], d["outcome"], d["build_id"]) for d in shown] == [
            ("schedule", "built", build["id"])]


def push_base(registry: Registry, base_image: str, fmt: str) -> None:
    """The same image pushed in another manifest format: another manifest digest."""
    subprocess.run(podman_argv("push", "--quiet", "--tls-verify=false", "--format", fmt,
                               base_image, f"{registry.host}/base/img:1"),
                   check=True, capture_output=True)


@pytest.mark.podman
async def test_a_moved_base_image_starts_one_build(
    tmp_path: Path, registry: Registry, base_image: str, forge: HttpGitServer
) -> None:
    push_base(registry, base_image, "oci")
    push_files(tmp_path, forge, {"app/Dockerfile": (
        f"FROM {registry.host}/base/img:1 AS build\nRUN true\n"
        "FROM build\nFROM scratch\nCOPY --from=build /bin/sh /sh\n")})
    async with api_env(tmp_path, INSECURE_REGISTRIES=[registry.host]) as env, \
            client(env.app, await env.token({"acme": "write"})) as c:
        r = await c.post(TRIGGERS, json={
            "name": "base", "kind": "gitlab", "git_url": forge.url("web.git"),
            "token": forge.token, "token_user": forge.user, "context": "app",
            "watch_base_images": True})
        assert r.status_code == 201, r.text
        first, second = managers(env)
        # the first look records the digests; nothing to compare with yet
        await asyncio.gather(first.watch_base_images(), second.watch_base_images())
        assert await builds(c) == []
        await asyncio.gather(first.watch_base_images(), second.watch_base_images())
        assert await builds(c) == []

        push_base(registry, base_image, "v2s2")
        await asyncio.gather(first.watch_base_images(), second.watch_base_images())
        await asyncio.gather(first.watch_base_images(), second.watch_base_images())
        [build] = await builds(c)
        assert build["trigger_metadata"]["cause"] == "base-image"
        assert build["options"]["pull"] is True
        shown = (await c.get(f"{TRIGGERS}{r.json()['id']}/deliveries")).json()["deliveries"]
        assert len(shown) == 1
        assert f"base image moved: {registry.host}/base/img:1" in shown[0]["reason"]
