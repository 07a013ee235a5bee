"""Quay mode end to end: `slipway serve` on Quay's database, Redis and storage builds what
Quay's web app enqueues, as Quay's build manager would (docs/quay-contract.md).

Quay's side is played by tests/support/quay_db.py (what Quay's web app writes: the build
row, its token, the queue item; Quay's cancel), the build by a real worker (podman) that
pushes to a real registry standing for Quay's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from support.archives import tar_gz
from support.fileserver import serve_files
from support.quay_db import SECRET_KEY, QuayDatabase
from support.redis_server import RedisServer
from support.redis_server import free_port as free_redis_port
from support.registry import Registry
from support.server import RunningServer, running_server

from slipway.server import SlipwayServer, StartupError

FINAL = ("complete", "error", "internalerror", "cancelled")


def quay_config(quay: QuayDatabase, redis_port: int, tmp_path: Path,
                **overrides: Any) -> dict[str, Any]:
    """What a Quay config.yaml carries that slipway reads, plus the test's addresses."""
    storage = tmp_path / "quay-storage"
    storage.mkdir(exist_ok=True)
    return {
        "DB_URI": quay.uri,
        "SERVER_HOSTNAME": quay.server_hostname,
        "BUILDLOGS_REDIS": {"host": "127.0.0.1", "port": redis_port},
        "DISTRIBUTED_STORAGE_CONFIG": {"local_us": ["LocalStorage",
                                                    {"storage_path": str(storage)}]},
        "DATABASE_SECRET_KEY": SECRET_KEY,
        **overrides,
    }


@pytest.fixture
def contexts() -> Iterator[dict[str, tuple[bytes, str]]]:
    """Build contexts served over HTTP (the archive_url of a build), by path."""
    files: dict[str, tuple[bytes, str]] = {}
    with serve_files(files) as base_url:
        files["base_url"] = (base_url.encode(), "")
        yield files


def archive_url(contexts: dict[str, tuple[bytes, str]], name: str, files: dict[str, str]
                ) -> str:
    contexts[f"/{name}.tar.gz"] = (tar_gz(files), "application/gzip")
    return f"{contexts['base_url'][0].decode()}/{name}.tar.gz"


async def redis_logs(redis_port: int, build_uuid: str) -> list[dict[str, Any]]:
    client = aioredis.Redis(host="127.0.0.1", port=redis_port)
    try:
        return [json.loads(raw) for raw in await client.lrange(f"builds/{build_uuid}/logs", 0, -1)]
    finally:
        await client.aclose()


async def wait_phase(quay: QuayDatabase, build_uuid: str, phases: tuple[str, ...],
                     within: float = 300) -> str:
    """Poll repositorybuild until its phase is one of `phases` (a safety limit only)."""
    deadline = time.monotonic() + within
    while True:
        phase = str(await asyncio.to_thread(lambda: quay.build_row(build_uuid)["phase"]))
        if phase in phases:
            return phase
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build_uuid} still {phase}")
        await asyncio.sleep(0.1)


async def wait_logs_settled(redis_port: int, build_uuid: str, last: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        entries = await redis_logs(redis_port, build_uuid)
        if entries and entries[-1].get("type") == "phase" and entries[-1]["message"] == last:
            return entries
        if time.monotonic() > deadline:
            raise AssertionError([e["message"] for e in entries][-10:])
        await asyncio.sleep(0.1)


@pytest.fixture
async def quay_slipway(tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer,
                       registry: Registry) -> AsyncIterator[RunningServer]:
    """slipway serving the builds of `quay`, whose registry is `registry`."""
    quay.server_hostname = registry.host
    config = quay_config(quay, redis_server.port, tmp_path,
                         INSECURE_REGISTRIES=[registry.host])
    async with running_server(tmp_path, **config) as slipway:
        yield slipway


# --- start-up -----------------------------------------------------------------------------

async def test_serve_on_quays_database_says_so_and_leaves_quays_tables_alone(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    before = quay.alembic_versions()
    async with running_server(tmp_path, **quay_config(quay, redis_server.port, tmp_path)
                              ) as slipway:
        assert slipway.server.backend is not None
        banner = slipway.server.backend.banner
    assert banner is not None
    host_db = quay.uri.rsplit("@", 1)[-1]
    assert banner == f"serving the builds of Quay at quay.example.test from {host_db}"
    assert "password" not in banner
    assert quay.alembic_versions() == before
    with quay.connect() as conn:
        tables = {r["tablename"] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        ours = conn.execute("SELECT version_num FROM slipway_alembic_version").fetchall()
    assert {"slipway_builds", "slipway_alembic_version", "queueitem",
            "repositorybuild"} <= tables
    assert ours


async def _refused(config: dict[str, Any], tmp_path: Path) -> str:
    from support.registry import free_port

    from slipway.config.loader import parse_config

    raw = {"DATA_DIR": str(tmp_path / "data"),
           "API_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
           "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}", **config}
    server = SlipwayServer(parse_config(raw).config)
    try:
        with pytest.raises(StartupError) as refused:
            await server.start()
    finally:
        await server.stop()
    return str(refused.value)


async def test_an_unreachable_buildlogs_redis_is_refused_naming_the_key(
    tmp_path: Path, quay: QuayDatabase
) -> None:
    message = await _refused(quay_config(quay, free_redis_port(), tmp_path), tmp_path)
    assert message.startswith("BUILDLOGS_REDIS: cannot reach Redis at 127.0.0.1:")


async def test_an_unsupported_storage_driver_is_refused_naming_the_key(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    config = quay_config(quay, redis_server.port, tmp_path, DISTRIBUTED_STORAGE_CONFIG={
        "local_us": ["SwiftStorage", {"swift_container": "quay"}]})
    message = await _refused(config, tmp_path)
    assert "DISTRIBUTED_STORAGE_CONFIG.local_us" in message
    assert "SwiftStorage" in message


async def test_a_database_neither_empty_slipways_nor_quays_is_refused(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    quay.execute("DELETE FROM alembic_version")  # Quay's tables, no Quay revision
    message = await _refused(quay_config(quay, redis_server.port, tmp_path), tmp_path)
    assert "run Quay's migrations on it first" in message
    assert "point DB_URI at an empty database" in message


# --- builds -------------------------------------------------------------------------------

def skopeo_digest(reference: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return str(json.loads(out)["Digest"])


@pytest.mark.podman
async def test_a_build_quay_enqueues_is_built_pushed_and_shown_as_quay_shows_it(
    quay_slipway: RunningServer, quay: QuayDatabase, redis_server: RedisServer,
    registry: Registry, base_image: str, contexts: dict[str, tuple[bytes, str]],
) -> None:
    repository_id = quay.repository("acme", "hello")
    for event in ("build_start", "build_success", "build_failure"):
        quay.notification(repository_id, event)
    url = archive_url(contexts, "hello", {
        "Dockerfile": f"FROM {base_image}\nRUN echo hello from quay mode\n"})
    started = quay.start_build("acme", "hello", tags=["latest", "v1"], archive_url=url)
    assert await wait_phase(quay, started.uuid, FINAL) == "complete"
    # Quay's queue item is completed (deleted), as Quay's manager completes it
    assert quay.queue_row(started.queue_id) is None
    # pushed to Quay's registry, both tags
    digest = skopeo_digest(f"{registry.host}/acme/hello:latest")
    assert skopeo_digest(f"{registry.host}/acme/hello:v1") == digest
    # Quay's UI reads the log from BUILDLOGS_REDIS: Quay's shape, the phases in order
    entries = await wait_logs_settled(redis_server.port, started.uuid, "complete")
    phases = [e["message"] for e in entries if e.get("type") == "phase"]
    assert phases == ["build-scheduled", "unpacking", "pulling", "building", "pushing",
                      "complete"]
    assert all(set(e) <= {"message", "type", "data"} and "datetime" in e["data"]
               for e in entries)
    assert any(e.get("type") == "command" and "RUN echo" in e["message"] for e in entries)
    assert any("hello from quay mode" in e["message"] for e in entries)
    # the repository's notifications go to Quay's notification queue, for Quay's
    # notification worker: start and success, no failure
    notifications = [json.loads(r["body"]) for r in quay.queue_rows("notification/%")]
    names = [r["queue_name"] for r in quay.queue_rows("notification/%")]
    assert names == [f"notification/acme/hello/{event}/build/{started.uuid}/"
                     for event in ("build_start", "build_success")]
    success = notifications[1]["event_data"]
    assert success["build_id"] == started.uuid
    assert success["docker_tags"] == ["latest", "v1"]
    assert success["manifest_digests"] == [f"{registry.host}/acme/hello@{digest}"]
    # slipway's API shows the same build
    status = (await quay_slipway.api.get(
        f"/api/v1/repository/acme/hello/build/{started.uuid}/status")).json()
    assert status["phase"] == "complete"
    # and its trace (kept in the manager's memory: Quay's database gets no table of it),
    # from Quay's enqueue, the worker's spans joined (docs/traces.md)
    trace = (await quay_slipway.api.get(
        f"/api/v1/repository/acme/hello/build/{started.uuid}/trace")).json()
    assert trace["complete"] is True
    names = {s["name"] for s in trace["spans"]}
    assert {"build", "queue wait", "claim", "executor start", "registration", "worker",
            "context fetch", "step 2/2", "push", "completion"} <= names, names
    assert "admission" not in names  # Quay's web app admitted it


@pytest.mark.podman
async def test_a_failing_run_ends_error_and_is_not_retried(
    quay_slipway: RunningServer, quay: QuayDatabase, redis_server: RedisServer,
    base_image: str, contexts: dict[str, tuple[bytes, str]],
) -> None:
    quay.notification(quay.repository("acme", "broken"), "build_failure")
    url = archive_url(contexts, "broken", {
        "Dockerfile": f"FROM {base_image}\nRUN echo about to fail && exit 7\n"})
    started = quay.start_build("acme", "broken", archive_url=url)
    assert await wait_phase(quay, started.uuid, FINAL) == "error"
    assert quay.queue_row(started.queue_id) is None  # not put back for a retry
    entries = await wait_logs_settled(redis_server.port, started.uuid, "error")
    errors = [e["message"] for e in entries if e.get("type") == "error"]
    assert any("exit status 7" in m for m in errors), errors
    [failure] = [json.loads(r["body"]) for r in quay.queue_rows("notification/%")]
    assert "exit status 7" in failure["event_data"]["error_message"]


@pytest.mark.podman
async def test_a_cancel_written_as_quays_api_writes_it_stops_the_running_build(
    quay_slipway: RunningServer, quay: QuayDatabase, redis_server: RedisServer,
    base_image: str, contexts: dict[str, tuple[bytes, str]],
) -> None:
    quay.repository("acme", "slow")
    url = archive_url(contexts, "slow", {
        "Dockerfile": f"FROM {base_image}\nRUN echo started && sleep 600\n"})
    started = quay.start_build("acme", "slow", archive_url=url)
    await wait_phase(quay, started.uuid, ("building",))
    # endpoints/api/build.py with BUILD_MANAGER ephemeral: the queue item deleted, the
    # OrchestratorCanceller's key written (it answers True), the phase `cancelled`
    assert quay.cancel_build(started.uuid, canceller=lambda _uuid: True)
    status = await wait_final_in_slipway(quay_slipway, "acme", "slow", started.uuid)
    assert status["phase"] == "cancelled"
    assert quay.build_row(started.uuid)["phase"] == "cancelled"
    manager = quay_slipway.server.manager
    assert manager is not None
    deadline = time.monotonic() + 60
    while manager.running:  # the worker is stopped, not left to sleep out its 600 s
        assert time.monotonic() < deadline, "the worker still runs"
        await asyncio.sleep(0.1)


async def wait_final_in_slipway(slipway: RunningServer, namespace: str, name: str,
                                build_uuid: str) -> dict[str, Any]:
    return await slipway.wait_final(namespace, name, build_uuid, within=60)


@pytest.mark.podman
async def test_the_worker_pushes_to_quay_with_the_build_token_quay_hands_out(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer, base_image: str,
    contexts: dict[str, tuple[bytes, str]],
) -> None:
    """Quay's registry accepts a build's push as user `$token` with the build's access
    token (token_name + decrypted token_code): here a registry that accepts only that."""
    from support.registry import run_registry

    quay.repository("acme", "tokened")
    url = archive_url(contexts, "tokened", {"Dockerfile": f"FROM {base_image}\nRUN true\n"})
    started = quay.start_build("acme", "tokened", archive_url=url)
    with run_registry(auth=("$token", started.token)) as registry:
        quay.server_hostname = registry.host
        config = quay_config(quay, redis_server.port, tmp_path,
                             INSECURE_REGISTRIES=[registry.host])
        async with running_server(tmp_path, **config):
            assert await wait_phase(quay, started.uuid, FINAL) == "complete"
        out = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--creds", f"$token:{started.token}",
             f"docker://{registry.host}/acme/tokened:latest"],
            check=True, capture_output=True, text=True).stdout
        assert json.loads(out)["Digest"].startswith("sha256:")


async def test_slipways_own_build_route_points_to_quay_in_quay_mode(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    quay.repository("acme", "api")
    started = quay.start_build("acme", "api", archive_url="http://127.0.0.1:1/none.tar.gz")
    async with running_server(tmp_path, **quay_config(quay, redis_server.port, tmp_path),
                              BUILD_MANAGER=["external"]) as slipway:
        response = await slipway.api.post("/api/v1/repository/acme/api/build/",
                                          json={"archive_url": "http://example.test/c.tgz"})
        listed = await slipway.api.get("/api/v1/repository/acme/api/build/")
        # slipway's own triggers: Quay's start Quay's builds here
        triggers = await slipway.api.post("/api/v1/repository/acme/api/trigger/", json={
            "name": "t", "kind": "github", "git_url": "https://github.com/acme/api.git"})
    assert triggers.status_code == 404
    assert "in Quay mode Quay's triggers start builds" in triggers.text
    assert response.status_code == 403
    assert "start builds through Quay" in response.text
    assert listed.status_code == 200
    # no manager here: the build waits in Quay's queue, untouched
    assert quay.queue_row(started.queue_id)["retries_remaining"] == 3


async def test_a_worker_that_never_registers_is_retried_then_ends_internalerror(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    never = tmp_path / "never-registers.py"
    never.write_text("import time\nwhile True:\n    time.sleep(1)\n")
    quay.repository("acme", "lost")
    started = quay.start_build("acme", "lost", archive_url="http://127.0.0.1:1/c.tar.gz")
    config = quay_config(quay, redis_server.port, tmp_path, BUILD_MANAGER=["ephemeral", {
        "JOB_REGISTRATION_TIMEOUT": 1, "RETRY_AFTER": 0,
        "EXECUTORS": [{"EXECUTOR": "local", "SETUP_TIME": 1,
                       "BUILDER_BINARY_LOCATION": f"{sys.executable} {never}"}]}])
    async with running_server(tmp_path, **config):
        assert await wait_phase(quay, started.uuid, FINAL) == "internalerror"
        entries = await wait_logs_settled(redis_server.port, started.uuid, "internalerror")
    # Quay's three tries (retries_remaining 3), then the item is gone
    assert quay.queue_row(started.queue_id) is None
    phases = [e["message"] for e in entries if e.get("type") == "phase"]
    assert phases == ["build-scheduled", "waiting"] * 2 + ["build-scheduled", "internalerror"]
    errors = [e["message"] for e in entries if e.get("type") == "error"]
    assert errors[-1] == ("the build worker never registered with the build manager "
                          "(after 3 attempts)")
    assert sum("will be retried" in m for m in errors) == 2


async def test_building_without_database_secret_key_is_refused_naming_it(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    config = quay_config(quay, redis_server.port, tmp_path)
    del config["DATABASE_SECRET_KEY"]
    message = await _refused(config, tmp_path)
    assert message.startswith("DATABASE_SECRET_KEY is not set")


@pytest.mark.podman
async def test_a_trigger_build_clones_the_triggers_repository_at_its_commit(
    quay_slipway: RunningServer, quay: QuayDatabase, registry: Registry, base_image: str,
    tmp_path: Path,
) -> None:
    """A custom-git trigger's build (Quay's git_package: the trigger's deploy key, the
    metadata's git_url and commit) is cloned by the worker, at that commit."""
    repo = tmp_path / "source"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.test"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "Dockerfile").write_text(f"FROM {base_image}\nCOPY msg.txt /msg.txt\n"
                                     "RUN cat /msg.txt\n")
    (repo / "msg.txt").write_text("the commit the trigger saw\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    (repo / "msg.txt").write_text("a later commit\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    repository_id = quay.repository("acme", "triggered")
    trigger_id, _ = quay.trigger(repository_id, service="custom-git",
                                 private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nnot used "
                                             "for a local path\n-----END OPENSSH PRIVATE KEY-----")
    started = quay.start_build("acme", "triggered", trigger_id=trigger_id, manual_user=None,
                               trigger_metadata={"git_url": str(repo), "commit": sha})
    assert await wait_phase(quay, started.uuid, FINAL) == "complete"
    status = await quay_slipway.wait_final("acme", "triggered", started.uuid)
    logs = await quay_slipway.logs("acme", "triggered", started.uuid)
    assert status["phase"] == "complete"
    assert any("the commit the trigger saw" in e["message"] for e in logs)
    assert not any("a later commit" in e["message"] for e in logs)
    # Quay's trigger counters: a complete build resets them
    assert quay.trigger_row(trigger_id)["successive_failure_count"] == 0


@pytest.mark.podman
async def test_an_uploaded_context_in_mounted_local_storage_is_served_to_the_worker(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer, registry: Registry,
    base_image: str,
) -> None:
    """Quay's UI uploaded the context (resource_key) to LocalStorage; with the storage
    mounted (QUAY_USERFILES_SOURCE: mount) slipway serves it to the worker itself."""
    storage = tmp_path / "quay-storage"
    (storage / "userfiles").mkdir(parents=True)
    file_id = "3f0c9a7e-upload"
    (storage / "userfiles" / file_id).write_bytes(tar_gz({
        "Dockerfile": f"FROM {base_image}\nCOPY note.txt /note.txt\nRUN cat /note.txt\n",
        "note.txt": "uploaded through Quay\n"}))
    quay.server_hostname = registry.host
    quay.repository("acme", "uploaded")
    started = quay.start_build("acme", "uploaded", resource_key=file_id)
    config = quay_config(quay, redis_server.port, tmp_path, QUAY_USERFILES_SOURCE="mount",
                         INSECURE_REGISTRIES=[registry.host])
    async with running_server(tmp_path, **config) as slipway:
        assert await wait_phase(quay, started.uuid, FINAL) == "complete"
        logs = await slipway.logs("acme", "uploaded", started.uuid)
        # the link is signed: without its token the file is not served
        refused = await slipway.api.get(f"/api/v1/filedrop/{file_id}/content",
                                        params={"token": "forged"})
    assert any("uploaded through Quay" in e["message"] for e in logs)
    assert refused.status_code == 403


@pytest.mark.podman
async def test_an_uploaded_context_in_s3_storage_is_fetched_by_presigned_url(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer, registry: Registry,
    base_image: str,
) -> None:
    import boto3
    from support.moto_server import moto_server

    file_id = "9b1d-s3-upload"
    with moto_server() as moto:
        s3 = boto3.client("s3", endpoint_url=moto, aws_access_key_id="AKIATEST",
                          aws_secret_access_key="secret", region_name="us-east-1")
        s3.create_bucket(Bucket="quay-s3")
        s3.put_object(Bucket="quay-s3", Key=f"registry/userfiles/{file_id}",
                      Body=tar_gz({"Dockerfile": f"FROM {base_image}\n"
                                                          "RUN echo built from s3\n"}))
        quay.server_hostname = registry.host
        quay.repository("acme", "s3")
        started = quay.start_build("acme", "s3", resource_key=file_id)
        config = quay_config(
            quay, redis_server.port, tmp_path, INSECURE_REGISTRIES=[registry.host],
            USERFILES_LOCATION="default",
            DISTRIBUTED_STORAGE_CONFIG={"default": ["S3Storage", {
                "storage_path": "/registry", "s3_bucket": "quay-s3",
                "s3_access_key": "AKIATEST", "s3_secret_key": "secret",
                "endpoint_url": moto, "s3_region": "us-east-1"}]})
        async with running_server(tmp_path, **config):
            assert await wait_phase(quay, started.uuid, FINAL) == "complete"
            entries = await wait_logs_settled(redis_server.port, started.uuid, "complete")
    assert any("built from s3" in e["message"] for e in entries)


async def test_slipways_api_shows_quays_builds_it_has_not_run(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    """A build Quay's own manager ran before the switch (its log in BUILDLOGS_REDIS), and
    one still waiting in Quay's queue: slipway's API lists both, with status and log."""
    quay.repository("acme", "history")
    old = quay.start_build("acme", "history", archive_url="http://127.0.0.1:1/c.tar.gz")
    quay.update_phase_then_close(old.uuid, "complete")
    quay.execute("DELETE FROM queueitem WHERE id = %s", old.queue_id)
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        await client.rpush(f"builds/{old.uuid}/logs", *(json.dumps(e) for e in (
            {"message": "building", "type": "phase", "data": {"datetime": "2026-01-01"}},
            {"message": "built by Quay's own manager"},
        )))
    finally:
        await client.aclose()
    waiting = quay.start_build("acme", "history", archive_url="http://127.0.0.1:1/c.tar.gz")
    async with running_server(tmp_path, **quay_config(quay, redis_server.port, tmp_path),
                              BUILD_MANAGER=["external"]) as slipway:
        listed = (await slipway.api.get("/api/v1/repository/acme/history/build/")).json()
        status = (await slipway.api.get(
            f"/api/v1/repository/acme/history/build/{old.uuid}/status")).json()
        logs = await slipway.logs("acme", "history", old.uuid)
    assert [b["id"] for b in listed["builds"]] == [waiting.uuid, old.uuid]
    assert [b["phase"] for b in listed["builds"]] == ["waiting", "complete"]
    assert status["phase"] == "complete"
    assert [e["message"] for e in logs] == ["building", "built by Quay's own manager"]


async def test_a_build_quays_manager_began_continues_its_log_after_quays_entries(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    """Quay's manager stopped (switched off) mid-build; its lease ran out and slipway
    claims the build: Quay's log keeps its entries, slipway's follow them, none twice."""
    never = tmp_path / "never-registers.py"
    never.write_text("import time\nwhile True:\n    time.sleep(1)\n")
    quay.repository("acme", "handover")
    started = quay.start_build("acme", "handover", archive_url="http://127.0.0.1:1/c.tgz")
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        await client.rpush(f"builds/{started.uuid}/logs", *(json.dumps(e) for e in (
            {"message": "build-scheduled", "type": "phase", "data": {"datetime": "x"}},
            {"message": "from Quay's manager", "data": {"datetime": "x"}},
        )))
    finally:
        await client.aclose()
    config = quay_config(quay, redis_server.port, tmp_path, BUILD_MANAGER=["ephemeral", {
        "JOB_REGISTRATION_TIMEOUT": 1, "RETRY_AFTER": 0,
        "EXECUTORS": [{"EXECUTOR": "local", "SETUP_TIME": 1,
                       "BUILDER_BINARY_LOCATION": f"{sys.executable} {never}"}]}])
    async with running_server(tmp_path, **config) as slipway:
        assert await wait_phase(quay, started.uuid, FINAL) == "internalerror"
        entries = await wait_logs_settled(redis_server.port, started.uuid, "internalerror")
        ours = await slipway.logs("acme", "handover", started.uuid)
    messages = [e["message"] for e in entries]
    assert messages[:3] == ["build-scheduled", "from Quay's manager", "build-scheduled"]
    assert messages.count("from Quay's manager") == 1
    assert [e["message"] for e in ours] == messages


async def test_slipways_cancel_of_a_build_waiting_in_quays_queue_cancels_it_as_quay_does(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer
) -> None:
    quay.repository("acme", "queued")
    started = quay.start_build("acme", "queued", archive_url="http://127.0.0.1:1/c.tgz")
    async with running_server(tmp_path, **quay_config(quay, redis_server.port, tmp_path),
                              BUILD_MANAGER=["external"]) as slipway:
        cancelled = await slipway.api.delete(
            f"/api/v1/repository/acme/queued/build/{started.uuid}")
        again = await slipway.api.delete(
            f"/api/v1/repository/acme/queued/build/{started.uuid}")
    assert cancelled.status_code == 201, cancelled.text
    assert quay.build_row(started.uuid)["phase"] == "cancelled"
    assert quay.queue_row(started.queue_id) is None
    assert again.status_code == 400  # over: too late, as Quay answers
