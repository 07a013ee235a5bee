"""Triggers end to end with real git: a commit pushed to `git http-backend` (HTTPS-style,
with a token) or to sshd (a deploy key), the webhook delivered as GitHub or GitLab sends
it, the worker fetching exactly that commit, podman building it, the image pushed to a
real docker-registry with the templated tags."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.forge import github_delivery, github_example, gitlab_delivery, gitlab_example
from support.git_server import (
    bare_repository,
    commit_files,
    git,
    http_git_server,
    ssh_git_server,
)
from support.registry import Registry
from support.server import RunningServer, running_server
from support.status_recorder import status_recorder

pytestmark = pytest.mark.podman

DOCKERFILE = """\
FROM {base}
COPY app.txt /app.txt
RUN cat /app.txt
"""


def skopeo_digest(reference: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return str(json.loads(out)["Digest"])


def server_config(registry: Registry) -> dict[str, Any]:
    return {"SERVER_HOSTNAME": registry.host, "INSECURE_REGISTRIES": [registry.host],
            "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [
                {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman"}]}]}


async def create_trigger(s: RunningServer, **body: Any) -> dict[str, Any]:
    r = await s.api.post("/api/v1/repository/acme/web/trigger/", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliver(s: RunningServer, trigger: dict[str, Any], body: bytes,
                  headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as forge:  # no API token: the signature
        r = await forge.post(trigger["webhook_url"], content=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def github_push(ref: str, before: str, after: str, message: str,
                changed: list[str]) -> dict[str, Any]:
    """GitHub's own example push, made to tell of this push."""
    payload = github_example("push", ref="refs/heads/master", deleted=False)
    head = dict(payload["head_commit"], id=after, message=message, added=[],
                modified=changed, removed=[])
    repo = dict(payload["repository"], default_branch="main", master_branch="main")
    return dict(payload, ref=ref, before=before, after=after, head_commit=head,
                commits=[head], repository=repo, created=False)


async def test_github_push_over_https_builds_that_commit(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    with http_git_server(tmp_path / "git") as forge, status_recorder() as statuses:
        bare_repository(tmp_path / "git", "acme/web.git")
        work = tmp_path / "work"
        git("clone", "--quiet", forge.authed_url("acme/web.git"), str(work))
        first = commit_files(work, {"app/Dockerfile": DOCKERFILE.format(base=base_image),
                                    "app/app.txt": "version one\n"}, "first")
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)

        async with running_server(tmp_path, **server_config(registry)) as s:
            trigger = await create_trigger(
                s, name="web", kind="github", git_url=forge.url("acme/web.git"),
                token=forge.token, context="app", paths=["app/**"],
                status_token="ghp_status0123456789", status_api_url=f"{statuses.url}/api/v3")
            assert forge.token not in json.dumps(trigger)
            # the commit built is the pushed one, not the branch's head at build time
            second = commit_files(work, {"app/app.txt": "version two\n"}, "second: v2")
            git("push", "--quiet", "origin", "HEAD:main", cwd=work)
            commit_files(work, {"app/app.txt": "version three\n"}, "third")
            git("push", "--quiet", "origin", "HEAD:main", cwd=work)

            payload = github_push("refs/heads/main", first, second, "second: v2",
                                  ["app/app.txt"])
            answer = await deliver(s, trigger, *github_delivery(
                "push", payload, trigger["webhook_secret"]))
            assert answer["tags"] == ["main", second[:7], "latest"]
            build = await s.wait_final("acme", "web", answer["build_id"])
            assert build["phase"] == "complete", build
            source = build["trigger_metadata"]
            assert (source["commit"], source["ref"]) == (second, "refs/heads/main")
            assert source["message"] == "second: v2"
            assert source["git_url"] == forge.url("acme/web.git")
            lines = [e["message"] for e in await s.logs("acme", "web", build["id"])]
            text = "\n".join(lines)
            # only that commit was fetched (by its id, depth 1), not the repository
            assert f"{second} -> FETCH_HEAD" in text
            assert "version two" in text and "version three" not in text
            assert forge.token not in text and forge.token not in json.dumps(build)
            # the manager's trigger service posted the build's states to its commit
            deadline = time.monotonic() + 60
            while not statuses.received or statuses.received[-1].body["state"] != "success":
                assert time.monotonic() < deadline, statuses.received
                await asyncio.sleep(0.2)
            posted = [x.body["state"] for x in statuses.received]
            assert set(posted[:-1]) == {"pending"} and posted[-1] == "success"
            assert all(x.path == f"/api/v3/repos/acme/web/statuses/{second}"
                       for x in statuses.received)
            assert statuses.received[-1].body["target_url"] == (
                f"{s.base_url}/#/build/acme/web/{build['id']}")

    digests = {skopeo_digest(f"{registry.host}/acme/web:{tag}")
               for tag in ("main", second[:7], "latest")}
    assert len(digests) == 1
    # the clone asked the server with the token (a request without one got the 401)
    assert any(ok and "git-upload-pack" in path for _, path, ok in forge.requests)


async def test_gitlab_tag_push_over_ssh_with_a_deploy_key(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    with ssh_git_server(tmp_path / "ssh") as sshd:
        bare = bare_repository(tmp_path / "git", "web.git")
        work = tmp_path / "work"
        git("init", "--quiet", "-b", "main", str(work))
        commit = commit_files(work, {"Dockerfile": DOCKERFILE.format(base=base_image),
                                     "app.txt": "tagged release\n"}, "release 1.2")
        git("tag", "-a", "v1.2.0", "-m", "v1.2.0", cwd=work)
        git("push", "--quiet", str(bare), "main", "v1.2.0", cwd=work)

        async with running_server(tmp_path, **server_config(registry)) as s:
            trigger = await create_trigger(
                s, name="release", kind="gitlab", git_url=sshd.url(bare),
                ssh_key=sshd.deploy_key, branches=[], tags=["v*"],
                tag_templates=["{tag}", "release-{sha:7}"])
            assert trigger["credentials"] == ["ssh_key", "webhook_secret"]
            payload = gitlab_example("tag_push")
            payload.update(ref="refs/tags/v1.2.0", after=commit, checkout_sha=commit,
                           message="v1.2.0")
            answer = await deliver(s, trigger, *gitlab_delivery(
                "Tag Push Hook", payload, trigger["webhook_secret"]))
            build = await s.wait_final("acme", "web", answer["build_id"])
            assert build["phase"] == "complete", build
            assert build["tags"] == ["v1.2.0", f"release-{commit[:7]}"]
            text = "\n".join(e["message"] for e in await s.logs("acme", "web", build["id"]))
            assert "tagged release" in text
            key_body = sshd.deploy_key.splitlines()[1]
            assert key_body not in text and key_body not in json.dumps(build)

    assert skopeo_digest(f"{registry.host}/acme/web:v1.2.0") == skopeo_digest(
        f"{registry.host}/acme/web:release-{commit[:7]}")
