"""Every way of submitting a build passes the same admission rules (manager/admission.py):
the same bad input is refused with the same answer by a new build and by a rebuild, and
a refused build leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from support.api_app import ApiEnv, api_env, client
from support.enqueue import enqueue

from slipway.store.records import NewBuild

REPO = "/api/v1/repository/acme/web/build/"
ARCHIVE = "https://example.com/context.tar.gz"


async def _stored_build(env: ApiEnv, **values: Any) -> str:
    """A build already in the store (entered before the rule it now breaks applied)."""
    fields: dict[str, Any] = {"namespace": "acme", "repository": "web", "tags": ["latest"],
                              "registry": env.config.SERVER_HOSTNAME, "archive_url": ARCHIVE}
    fields.update(values)
    return (await enqueue(env.control, NewBuild(**fields))).id


async def _refusals(c: httpx.AsyncClient, build_id: str, body: dict[str, Any]
                    ) -> tuple[httpx.Response, httpx.Response]:
    """The answers to a new build with `body` and to a rebuild of `build_id`."""
    new = await c.post(REPO, json=body)
    again = await c.post(f"{REPO}{build_id}/rebuild")
    return new, again


def _error(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    return r.status_code, body["error_type"], body["error_message"]


async def _builds_in(env: ApiEnv) -> int:
    return len(await env.store.builds.list_for_repository("acme", "web"))


async def test_builds_disabled_refuses_new_builds_and_rebuilds_alike(tmp_path: Path) -> None:
    async with api_env(tmp_path, FEATURE_BUILD_SUPPORT=False) as env:
        build_id = await _stored_build(env)
        async with client(env.app, await env.token({"*": "admin"})) as c:
            new, again = await _refusals(c, build_id, {"archive_url": ARCHIVE})
        assert _error(new) == _error(again) == (
            403, "feature_disabled",
            "builds are disabled on this server (FEATURE_BUILD_SUPPORT is false)")
        assert await _builds_in(env) == 1


async def test_a_full_queue_refuses_new_builds_and_rebuilds_alike(tmp_path: Path) -> None:
    async with api_env(tmp_path, NAMESPACE_MAX_QUEUED_BUILDS=1) as env:
        build_id = await _stored_build(env)
        async with client(env.app, await env.token({"*": "admin"})) as c:
            new, again = await _refusals(c, build_id, {"archive_url": ARCHIVE})
        assert _error(new) == _error(again) == (
            429, "too_many_builds",
            "namespace 'acme' already has 1 builds queued, its limit; retry when some have "
            "finished")
        assert new.headers["retry-after"] == again.headers["retry-after"] == "30"
        assert await _builds_in(env) == 1


async def test_a_registry_no_longer_allowed_refuses_new_builds_and_rebuilds_alike(
    tmp_path: Path,
) -> None:
    async with api_env(tmp_path) as env:
        build_id = await _stored_build(env, registry="gone.example.com")
        async with client(env.app, await env.token({"*": "admin"})) as c:
            new, again = await _refusals(
                c, build_id, {"archive_url": ARCHIVE, "registry": "gone.example.com"})
        status, kind, message = _error(new)
        assert (status, kind) == (400, "invalid_request")
        assert message.startswith("registry: 'gone.example.com' is not a registry this server "
                                  "pushes to")
        assert "ALLOWED_REGISTRIES" in message
        assert _error(again) == _error(new)
        assert await _builds_in(env) == 1


async def test_a_missing_upload_refuses_new_builds_and_rebuilds(tmp_path: Path) -> None:
    """The rule is the same; each answer names what the client sent (a file id, or the
    build it asked to start again)."""
    async with api_env(tmp_path) as env:
        file_id = await env.store.uploads.create("application/x-tar", "acme")  # never sent
        build_id = await _stored_build(env, archive_url=None, resource_key=file_id)
        async with client(env.app, await env.token({"*": "admin"})) as c:
            new, again = await _refusals(c, build_id, {"file_id": file_id})
        assert _error(new) == (
            400, "invalid_request",
            f"file_id: {file_id!r} has no uploaded content; POST /api/v1/filedrop/ and PUT "
            "the archive to the returned url first")
        assert _error(again) == (
            400, "invalid_request",
            f"the uploaded context of build {build_id} is no longer on this server; start a "
            "new build with the context")
        assert await _builds_in(env) == 1


async def test_an_admitted_build_is_stored_queued_and_logged_at_once(tmp_path: Path) -> None:
    async with api_env(tmp_path) as env:
        async with client(env.app, await env.token({"*": "admin"})) as c:
            r = await c.post(REPO, json={"archive_url": ARCHIVE})
            assert r.status_code == 201, r.text
            again = await c.post(f"{REPO}{r.json()['id']}/rebuild")
            assert again.status_code == 201, again.text
        for build in (r.json(), again.json()):
            assert await env.store.queue.get_for_build(build["id"]) is not None
            total, entries = await env.store.logs.read(build["id"])
            assert total == 1 and entries[0].type == "phase"
            assert entries[0].message == "waiting"


async def test_a_build_pushes_at_most_100_tags(tmp_path: Path) -> None:
    """100 tags are accepted; the 101st is refused naming the limit and the count, and
    nothing is stored."""
    tags = [f"t{i}" for i in range(101)]
    async with api_env(tmp_path) as env:
        token = await env.token({"*": "admin"})
        async with client(env.app, token) as c:
            refused = await c.post(REPO, json={"archive_url": ARCHIVE, "docker_tags": tags})
            assert await _builds_in(env) == 0
            accepted = await c.post(REPO, json={"archive_url": ARCHIVE,
                                                "docker_tags": tags[:100]})
    assert _error(refused) == (
        400, "invalid_request",
        "docker_tags: 101 tags given; a build pushes at most 100 tags: push the others in "
        "another build, or tag the image afterwards (e.g. skopeo copy)")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["tags"] == tags[:100]
