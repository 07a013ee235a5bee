"""HTTP API: Quay's build routes over a real SQLite store and the memory orchestrator."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client

from slipway.api import context_url, sse
from slipway.domain.phases import Phase
from slipway.server import bootstrap_admin
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry

BUILDS = "/api/v1/repository/acme/web/build/"
SECRET = "pull-s3cret-value"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def upload(c: httpx.AsyncClient, content: bytes = b"FROM scratch\n") -> str:
    r = await c.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})
    assert r.status_code == 200, r.text
    drop = r.json()
    url = httpx.URL(drop["url"])
    r = await c.put(url.raw_path.decode(), content=content)
    assert r.status_code == 200, r.text
    return str(drop["file_id"])


async def start(c: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    if "file_id" not in body and "archive_url" not in body:
        body["archive_url"] = "https://example.com/context.tar.gz"
    r = await c.post(BUILDS, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_upload_then_build_is_queued_and_readable(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    file_id = await upload(admin)
    r = await admin.post(
        BUILDS,
        json={"file_id": file_id, "docker_tags": ["v1", "latest"], "build_args": {"X": "1"}},
    )
    assert r.status_code == 201, r.text
    build = r.json()
    assert r.headers["location"].endswith(f"/api/v1/repository/acme/web/build/{build['id']}/status")
    assert build["phase"] == "waiting"
    assert build["tags"] == ["v1", "latest"]
    assert build["resource_key"] == file_id
    assert build["repository"] == {"namespace": "acme", "name": "web"}
    assert build["manual_user"] == "root"
    assert build["started"].endswith(" GMT")  # RFC 2822
    assert build["completed"] is None and build["attempts"] == []
    assert build["retries_remaining"] == 3
    for path in (f"{BUILDS}{build['id']}", f"{BUILDS}{build['id']}/status"):
        got = await admin.get(path)
        assert got.status_code == 200 and got.json()["id"] == build["id"]
    listing = (await admin.get(BUILDS)).json()
    assert [b["id"] for b in listing["builds"]] == [build["id"]]
    record = await env.store.builds.get(build["id"])
    assert record is not None and record.registry == "registry.example.com:5000"
    assert record.build_args == {"X": "1"}
    assert await env.store.queue.count_queued("acme") == 1


async def test_default_tag_is_latest_and_list_is_newest_first(admin: httpx.AsyncClient) -> None:
    first = await start(admin)
    second = await start(admin)
    assert first["tags"] == ["latest"]
    builds = (await admin.get(BUILDS, params={"limit": 1})).json()["builds"]
    assert [b["id"] for b in builds] == [second["id"]]


async def test_unknown_build_is_404_also_from_another_repository(admin: httpx.AsyncClient) -> None:
    build = await start(admin)
    r = await admin.get(f"/api/v1/repository/acme/other/build/{build['id']}")
    assert r.status_code == 404
    assert (await admin.get(f"{BUILDS}no-such-build")).status_code == 404


async def test_authentication_and_scopes(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    body = {"archive_url": "https://example.com/c.tgz"}
    async with client(env.app) as anonymous:
        r = await anonymous.get(BUILDS)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    async with client(env.app, "slw_not-a-real-token") as forged:
        assert (await forged.get(BUILDS)).status_code == 401
    async with client(env.app, await env.token({"other": "write"})) as other_ns:
        r = await other_ns.post(BUILDS, json=body)
        assert r.status_code == 403 and "acme" in r.json()["error_message"]
        assert (await other_ns.get(BUILDS)).status_code == 403
    async with client(env.app, await env.token({"acme": "read"})) as reader:
        assert (await reader.get(BUILDS)).status_code == 200
        assert (await reader.post(BUILDS, json=body)).status_code == 403
        r = await reader.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})
        assert r.status_code == 403
    async with client(env.app, await env.token({"acme": "write"})) as writer:
        assert (await writer.post(BUILDS, json=body)).status_code == 201
        assert (await writer.delete(f"{BUILDS}{build['id']}")).status_code == 403
    async with client(env.app, await env.token({"acme": "admin"})) as ns_admin:
        assert (await ns_admin.delete(f"{BUILDS}{build['id']}")).status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"docker_tags": ["ok", "no spaces"]}, "docker_tags", "not a valid tag"),
        ({"docker_tags": ["-x"]}, "docker_tags", "not a valid tag"),
        ({"docker_tags": []}, "docker_tags", "at least one"),
        ({"docker_tags": ["a", "b", "a"]}, "docker_tags", "more than once"),
        ({"dockerfile_path": "../../etc/passwd"}, "dockerfile_path", "leaves the build context"),
        ({"subdirectory": "a/../../b"}, "subdirectory", "leaves the build context"),
        ({"context": "sub", "dockerfile_path": "/other/Dockerfile"}, "dockerfile_path", "outside"),
        ({"registry": "evil.example.com"}, "registry", "registry.example.com:5000, other."),
        ({"build_args": {"1bad": "x"}}, "build_args", "build argument name"),
        ({"unknown_field": 1}, "unknown_field", "unknown field"),
        ({"archive_url": "ftp://example.com/x.tgz"}, "archive_url", "http"),
        (
            {"archive_url": "https://a/x", "file_id": "5b2c0a5e-9c51-4a4c-9e0f-4f5c1b1f7d11"},
            "file_id, archive_url",
            "exactly one",
        ),
        ({"archive_url": None}, "file_id, archive_url", "exactly one"),
        ({"file_id": "not-a-uuid", "archive_url": None}, "file_id", "filedrop"),
        (
            {"file_id": "5b2c0a5e-9c51-4a4c-9e0f-4f5c1b1f7d11", "archive_url": None},
            "file_id",
            "no uploaded content",
        ),
    ],
)
async def test_bad_build_requests_are_400_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    payload = {"archive_url": "https://example.com/c.tgz", **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    r = await admin.post(BUILDS, json=payload)
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["error_type"] == "invalid_request"
    assert field in error["error_message"] and words in error["error_message"]
    assert (await admin.get(BUILDS)).json()["builds"] == []


async def test_bad_json_and_bad_names_are_400(admin: httpx.AsyncClient) -> None:
    r = await admin.post(BUILDS, content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error_message"]
    r = await admin.get("/api/v1/repository/Acme/web/build/")
    assert r.status_code == 400 and "namespace 'Acme'" in r.json()["error_message"]
    r = await admin.get(BUILDS, params={"limit": "many"})
    assert r.status_code == 400 and "limit" in r.json()["error_message"]


async def test_paths_follow_quay_semantics(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    quay_ui = await start(admin, context="/sub", dockerfile_path="/sub/docker/Dockerfile")
    assert (quay_ui["context"], quay_ui["dockerfile_path"]) == ("sub", "docker/Dockerfile")
    subdir = await start(admin, subdirectory="app/")
    assert (subdir["context"], subdir["dockerfile_path"]) == ("app", "Dockerfile")
    only_path = await start(admin, dockerfile_path="build/Containerfile")
    assert (only_path["context"], only_path["dockerfile_path"]) == ("build", "Containerfile")


async def test_other_allowed_registry_is_accepted(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin, registry="other.example.com")
    record = await env.store.builds.get(build["id"])
    assert record is not None and record.registry == "other.example.com"


async def test_disabled_build_support_refuses_builds(tmp_path: Path) -> None:
    async with (
        api_env(tmp_path, FEATURE_BUILD_SUPPORT=False) as e,
        client(e.app, await e.token({"*": "admin"})) as c,
    ):
        r = await c.post(BUILDS, json={"archive_url": "https://example.com/c.tgz"})
        assert r.status_code == 403
        assert "FEATURE_BUILD_SUPPORT" in r.json()["error_message"]


async def test_queue_limit_per_namespace_is_429(tmp_path: Path) -> None:
    async with (
        api_env(tmp_path, NAMESPACE_MAX_QUEUED_BUILDS=2) as e,
        client(e.app, await e.token({"*": "admin"})) as c,
    ):
        first = await start(c)
        await start(c)
        r = await c.post(BUILDS, json={"archive_url": "https://example.com/c.tgz"})
        assert r.status_code == 429 and "limit" in r.json()["error_message"]
        other = await c.post(
            "/api/v1/repository/other/web/build/", json={"archive_url": "https://e.com/c.tgz"}
        )
        assert other.status_code == 201
        assert (await c.delete(f"{BUILDS}{first['id']}")).status_code == 201
        await start(c)  # room again


async def test_upload_over_the_limit_is_413_and_nothing_is_kept(tmp_path: Path) -> None:
    async with (
        api_env(tmp_path, BUILD_UPLOAD_MAX_BYTES=1000) as e,
        client(e.app, await e.token({"*": "admin"})) as c,
    ):
        for declared in (True, False):
            drop = (await c.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"})).json()
            path = httpx.URL(drop["url"]).raw_path.decode()

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(10):
                    yield b"x" * 300

            content: Any = b"x" * 3000 if declared else chunks()
            r = await c.put(path, content=content)
            assert r.status_code == 413, r.text
            assert "1000 bytes" in r.json()["error_message"]
            r = await c.post(BUILDS, json={"file_id": drop["file_id"]})
            assert r.status_code == 400
        uploads = Path(e.config.DATA_DIR) / "uploads"
        assert not uploads.exists() or list(uploads.iterdir()) == []
        assert await upload(c, b"y" * 1000)  # exactly the limit is fine


async def test_upload_url_needs_its_token_and_works_once(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    drop = (await admin.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})).json()
    url = httpx.URL(drop["url"])
    async with client(env.app) as anonymous:  # the signed URL alone is enough (Quay's S3 URL)
        bad = await anonymous.put(
            url.copy_with(query=b"token=forged").raw_path.decode(), content=b"x"
        )
        assert bad.status_code == 403
        assert (await anonymous.put(url.raw_path.decode(), content=b"x")).status_code == 200
        assert (await anonymous.put(url.raw_path.decode(), content=b"x")).status_code == 409


async def test_logs_from_start(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    await env.advance(build["id"], Phase.BUILD_SCHEDULED)
    await env.advance(build["id"], Phase.BUILDING, "step 1", "step 2")
    r = await admin.get(f"{BUILDS}{build['id']}/logs")
    body = r.json()
    assert body["start"] == 0 and body["total"] == 5
    assert [e["message"] for e in body["logs"]] == [
        "waiting",
        "build-scheduled",
        "building",
        "step 1",
        "step 2",
    ]
    assert body["logs"][0]["type"] == "phase" and "type" not in body["logs"][3]
    assert "datetime" in body["logs"][3]["data"]
    later = (await admin.get(f"{BUILDS}{build['id']}/logs", params={"start": 3})).json()
    assert later["start"] == 3 and later["total"] == 5
    assert [e["message"] for e in later["logs"]] == ["step 1", "step 2"]
    assert (await admin.get(f"{BUILDS}{build['id']}/logs", params={"start": -1})).status_code == 400


def parse_sse(text: str) -> list[tuple[str, dict[str, Any] | str, str | None]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")
        if "data" in fields:
            events.append(
                (fields.get("event", "message"), json.loads(fields["data"]), fields.get("id"))
            )
    return events


async def test_log_stream_is_live_until_the_build_ends(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    bid = build["id"]
    await env.advance(bid, Phase.BUILD_SCHEDULED, "hello")
    stream = asyncio.create_task(admin.get(f"{BUILDS}{bid}/logs/stream"))
    await asyncio.sleep(0.3)
    assert not stream.done()  # the build is not over, so neither is the stream
    await env.advance(bid, Phase.BUILDING, "compiling")
    assert await env.control.cancel(bid) == "cancelled"
    r = await asyncio.wait_for(stream, 15)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    logs = [e for e in events if e[0] == "log"]
    assert [e[1]["message"] for e in logs] == [  # type: ignore[index]
        "waiting",
        "build-scheduled",
        "hello",
        "building",
        "compiling",
        "Build cancelled by user",
        "cancelled",
    ]
    assert [e[2] for e in logs] == [str(i) for i in range(7)]
    assert events[-1][0] == "end" and events[-1][1]["phase"] == "cancelled"  # type: ignore[index]
    # resume after entry 4
    again = await admin.get(f"{BUILDS}{bid}/logs/stream", headers={"Last-Event-ID": "4"})
    assert [e[2] for e in parse_sse(again.text) if e[0] == "log"] == ["5", "6"]


async def test_log_stream_is_woken_by_a_commit_in_its_own_process(
    env: ApiEnv, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no poll within the test's time: only the commit's wake-up can end the stream
    monkeypatch.setattr(sse, "POLL_SECONDS", 3600.0)
    bid = (await start(admin))["id"]
    stream = asyncio.create_task(admin.get(f"{BUILDS}{bid}/logs/stream"))
    await asyncio.sleep(0.3)
    await env.advance(bid, Phase.BUILDING, "compiling")
    assert not stream.done()
    assert await env.control.cancel(bid) == "cancelled"
    events = parse_sse((await asyncio.wait_for(stream, 15)).text)
    assert [e[1]["message"] for e in events if e[0] == "log"] == [  # type: ignore[index]
        "waiting", "building", "compiling", "Build cancelled by user", "cancelled"]
    assert events[-1][0] == "end"


async def test_log_stream_polls_for_a_writer_in_another_process(
    env: ApiEnv, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "POLL_SECONDS", 0.05)
    bid = (await start(admin))["id"]
    stream = asyncio.create_task(admin.get(f"{BUILDS}{bid}/logs/stream"))
    await asyncio.sleep(0.3)
    # another manager's store: its commits wake nothing in this one
    other = await SqlStore(env.config.DB_URI).open()
    try:
        async with other.write() as conn:
            await other.builds.move_phase(conn, bid, Phase.CANCELLED,
                                          log=[LogEntry("stopped elsewhere")])
    finally:
        await other.close()
    events = parse_sse((await asyncio.wait_for(stream, 15)).text)
    assert [e[1]["message"] for e in events if e[0] == "log"] == [  # type: ignore[index]
        "waiting", "stopped elsewhere"]
    assert events[-1][0] == "end" and events[-1][1]["phase"] == "cancelled"  # type: ignore[index]


async def test_cancel_then_too_late(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    r = await admin.delete(f"{BUILDS}{build['id']}")
    assert r.status_code == 201
    shown = (await admin.get(f"{BUILDS}{build['id']}")).json()
    assert shown["phase"] == "cancelled" and shown["completed"].endswith(" GMT")
    r = await admin.delete(f"{BUILDS}{build['id']}")
    assert r.status_code == 400
    assert r.json()["error_message"] == "Build is currently running or has finished"
    pushing = await start(admin)
    await env.advance(pushing["id"], Phase.PUSHING)
    assert (await admin.delete(f"{BUILDS}{pushing['id']}")).status_code == 400
    assert (await admin.get(f"{BUILDS}{pushing['id']}")).json()["phase"] == "pushing"
    assert (await admin.delete(f"{BUILDS}no-such-build")).status_code == 404


async def test_internal_error_without_retries_shows_expired(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    await env.advance(
        build["id"], Phase.INTERNAL_ERROR, retries_remaining=0, error="worker never registered"
    )
    shown = (await admin.get(f"{BUILDS}{build['id']}")).json()
    assert shown["phase"] == "expired" and shown["error"] == "worker never registered"
    other = await start(admin)
    await env.advance(other["id"], Phase.INTERNAL_ERROR, retries_remaining=1)
    assert (await admin.get(f"{BUILDS}{other['id']}")).json()["phase"] == "internalerror"


async def test_complete_build_shows_digest(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    build = await start(admin)
    digest = "sha256:" + "a" * 64
    await env.advance(build["id"], Phase.COMPLETE, image_digest=digest, completed=1.0e9)
    shown = (await admin.get(f"{BUILDS}{build['id']}")).json()
    assert shown["phase"] == "complete" and shown["image_digest"] == digest
    assert shown["completed"] == "Sun, 09 Sep 2001 01:46:40 GMT"


async def test_pull_password_is_never_returned(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    creds = {"username": "puller", "password": SECRET}
    r = await admin.post(
        BUILDS,
        json={
            "archive_url": "https://e.com/c.tgz",
            "pull_robot": "acme+puller",
            "pull_credentials": creds,
        },
    )
    assert r.status_code == 201 and SECRET not in r.text
    bid = r.json()["id"]
    record = await env.store.builds.get(bid)
    assert record is not None and record.pull_credentials == creds  # stored for the worker
    await env.control.cancel(bid)
    texts = [r.text]
    for path in ("", bid, f"{bid}/status", f"{bid}/logs", f"{bid}/logs/stream"):
        texts.append((await admin.get(f"{BUILDS}{path}")).text)
    assert all(SECRET not in t for t in texts)
    # a rejected request does not echo it either
    bad = await admin.post(
        BUILDS,
        json={"archive_url": "https://e.com/c.tgz", "pull_credentials": {**creds, "extra": 1}},
    )
    assert bad.status_code == 400 and SECRET not in bad.text


async def test_context_download_needs_a_valid_signed_link(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    file_id = await upload(admin, b"FROM localhost/base\n")
    build = await start(admin, file_id=file_id)
    record = await env.store.builds.get(build["id"])
    assert record is not None
    url = httpx.URL(context_url(env.config, env.tokens, record))
    assert str(url).startswith(f"http://127.0.0.1:8700/api/v1/filedrop/{file_id}/content?token=")
    async with client(env.app) as worker:  # no bearer token: the link is the credential
        r = await worker.get(url.raw_path.decode())
        assert r.status_code == 200 and r.content == b"FROM localhost/base\n"
        assert r.headers["content-type"].startswith("text/plain")
        forged = await worker.get(f"/api/v1/filedrop/{file_id}/content?token=forged")
        assert forged.status_code == 403
        # the upload link's token does not download
        drop = (await admin.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})).json()
        up_token = httpx.URL(drop["url"]).params["token"]
        r = await worker.get(f"/api/v1/filedrop/{drop['file_id']}/content?token={up_token}")
        assert r.status_code == 403
        # a link for one file does not open another
        other = await upload(admin)
        r = await worker.get(f"/api/v1/filedrop/{other}/content?{url.query.decode()}")
        assert r.status_code == 403
    by_url = await start(admin, archive_url="https://example.com/ctx.tar.gz")
    rec2 = await env.store.builds.get(by_url["id"])
    assert rec2 is not None
    assert context_url(env.config, env.tokens, rec2) == "https://example.com/ctx.tar.gz"


async def test_metrics_health_and_readiness(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    await start(admin)
    async with client(env.app) as c:
        metrics = await c.get("/metrics")
        assert metrics.status_code == 200
        assert 'slipway_builds_submitted_total{namespace="acme"}' in metrics.text
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        assert (await c.get("/readyz")).status_code == 200
        env.ready["orchestrator"] = False
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["failing"] == ["orchestrator"]


async def test_openapi_describes_the_routes(env: ApiEnv) -> None:
    async with client(env.app) as c:
        spec = (await c.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "/api/v1/repository/{namespace}/{repository}/build/" in paths
    assert "/api/v1/repository/{namespace}/{repository}/build/{build_id}/logs/stream" in paths
    assert "BuildRequest" in spec["components"]["schemas"]


async def test_bootstrap_admin_token_once(
    env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    token = await bootstrap_admin(env.store, env.config)
    assert token
    token_file = Path(env.config.DATA_DIR) / "admin-token"
    creds_file = tmp_path / "xdg" / "slipway" / "cli.json"
    for f in (token_file, creds_file):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert token_file.read_text().strip() == token
    assert json.loads(creds_file.read_text()) == {
        "current": "127.0.0.1:8700",
        "contexts": {"127.0.0.1:8700": {"server": "http://127.0.0.1:8700", "token": token}},
    }
    async with client(env.app, token) as c:
        assert (await c.get(BUILDS)).status_code == 200
    assert await bootstrap_admin(env.store, env.config) is None


async def test_bootstrap_survives_an_unwritable_cli_config(
    env: ApiEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    token = await bootstrap_admin(env.store, env.config)
    assert token
    assert (Path(env.config.DATA_DIR) / "admin-token").read_text().strip() == token
