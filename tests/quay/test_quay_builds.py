"""Quay's build rows as Quay's web app writes them, read with their repository, token,
trigger and robot; phases written as update_phase_then_close does; triggers disabled as
update_trigger_disable_status does; and the BuildPack a worker is handed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from support.postgres_server import postgres_available
from support.quay_db import SECRET_KEY, QuayDatabase
from support.redis_server import RedisServer

from slipway.backends.quay import QuayBackend
from slipway.config.loader import parse_config
from slipway.manager.build_pack import BuildPack, Login, assemble_build_pack
from slipway.manager.servicer import build_pack_message
from slipway.quay.buildpack import dockerfile_args
from slipway.quay.builds import QuayBuilds
from slipway.quay.encryption import FieldEncrypter
from slipway.quay.errors import QuayModeError
from slipway.quay.queue import QuayQueue
from slipway.store.database import Database
from slipway.store.records import BuildRecord

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")

DEPLOY_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"
              "-----END OPENSSH PRIVATE KEY-----\n")


async def test_a_build_is_read_with_its_repository_token_and_robot(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app", tags=["v1", "latest"], resource_key="f00d",
                               pull_robot=("acme+puller", "robot-token"))
    build = await QuayBuilds(db).get(started.uuid)

    assert build is not None
    assert (build.namespace, build.name, build.repository) == ("acme", "app", "acme/app")
    assert build.phase == "waiting" and build.tags == ["v1", "latest"]
    assert build.resource_key == "f00d" and build.pull_robot == "acme+puller"
    assert build.queue_id == str(started.queue_id) and build.trigger is None
    assert build.job_config["registry"] == "quay.example.test"
    assert build.access_token(quay.encrypter) == started.token
    assert len(started.token) == 64 and started.token not in repr(build)
    assert await QuayBuilds(db).get("no-such-build") is None


async def test_a_wrong_database_secret_key_is_named_and_the_token_not_shown(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    build = await QuayBuilds(db).get(started.uuid)
    assert build is not None
    with pytest.raises(QuayModeError) as info:
        build.access_token(FieldEncrypter("not Quay's key"))
    assert "DATABASE_SECRET_KEY" in str(info.value)
    assert started.token[32:] not in str(info.value)


async def test_phases_move_from_the_phase_read_and_never_over_cancelled(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    builds = QuayBuilds(db)
    assert await builds.update_phase_then_close(started.uuid, "build-scheduled")
    assert quay.build_row(started.uuid)["phase"] == "build-scheduled"
    assert await builds.phases([started.uuid, "gone"]) == {started.uuid: "build-scheduled"}

    quay.update_phase_then_close(started.uuid, "cancelled")  # Quay's UI cancels it
    assert await builds.update_phase_then_close(started.uuid, "building") is False
    assert quay.build_row(started.uuid)["phase"] == "cancelled"
    assert await builds.update_phase_then_close("no-such-build", "building") is False
    # only the moves domain/phases.py allows: a build-scheduled row does not go to pushing
    # and back to unpacking
    other = quay.start_build("acme", "app")
    assert await builds.update_phase_then_close(other.uuid, "build-scheduled")
    assert await builds.update_phase_then_close(other.uuid, "pushing")
    assert await builds.update_phase_then_close(other.uuid, "unpacking") is False
    assert quay.build_row(other.uuid)["phase"] == "pushing"
    with pytest.raises(ValueError, match="not one of Quay's build phases"):
        await builds.update_phase_then_close(started.uuid, "expired")


async def test_quays_cancel_of_a_waiting_build_and_of_a_running_one(
    quay: QuayDatabase, db: Database
) -> None:
    """spec §6: the queue row goes in any phase; a running build is only marked
    cancelled when a canceller accepts it."""
    quay.repository("acme", "waiting")
    quay.repository("acme", "running")
    waiting = quay.start_build("acme", "waiting")
    running = quay.start_build("acme", "running")
    await QuayQueue(db).claim(limit=5, lease_seconds=60)
    for phase in ("build-scheduled", "building"):  # the moves the phase table allows
        assert await QuayBuilds(db).update_phase_then_close(running.uuid, phase)
    await QuayBuilds(db).update_phase_then_close(waiting.uuid, "waiting")

    assert quay.cancel_build(running.uuid) is False  # no canceller (Quay's Noop)
    assert quay.queue_row(running.queue_id) is None
    assert quay.build_row(running.uuid)["phase"] == "building"
    assert quay.cancel_build(running.uuid, canceller=lambda _uuid: True) is True
    assert quay.build_row(running.uuid)["phase"] == "cancelled"

    # claimed by a manager but still waiting: its row goes and it is cancelled, so the
    # manager finds its item gone and its phase writes refused
    assert quay.cancel_build(waiting.uuid) is True
    assert quay.queue_row(waiting.queue_id) is None
    assert await QuayBuilds(db).phases([waiting.uuid]) == {waiting.uuid: "cancelled"}
    assert await QuayBuilds(db).update_phase_then_close(waiting.uuid, "build-scheduled") is False


async def test_trigger_counters_disable_it_at_the_thresholds(
    quay: QuayDatabase, db: Database
) -> None:
    repo = quay.repository("acme", "app")
    trigger_id, _ = quay.trigger(repo)
    builds = QuayBuilds(db)

    async def after(phase: str) -> dict[str, object]:
        await builds.update_trigger_disable_status(
            trigger_id, phase, failure_threshold=2, internal_error_threshold=3)
        return quay.trigger_row(trigger_id)

    row = await after("error")
    assert (row["successive_failure_count"], row["enabled"]) == (1, True)
    row = await after("complete")
    assert (row["successive_failure_count"], row["successive_internal_error_count"]) == (0, 0)
    for _ in range(2):
        row = await after("internalerror")
    assert (row["successive_internal_error_count"], row["enabled"]) == (2, True)
    row = await after("error")  # a failure resets the internal-error count
    assert (row["successive_failure_count"], row["successive_internal_error_count"]) == (1, 0)
    row = await after("cancelled")
    assert (row["successive_failure_count"], row["enabled"]) == (1, True)
    row = await after("error")
    assert row["enabled"] is False and row["successive_failure_count"] == 2
    assert row["disabled_reason"] == "successive_build_failures"
    assert row["disabled_datetime"] is not None

    other_id, _ = quay.trigger(repo)
    for _ in range(3):
        await builds.update_trigger_disable_status(
            other_id, "internalerror", failure_threshold=2, internal_error_threshold=3)
    row = quay.trigger_row(other_id)
    assert row["enabled"] is False
    assert row["disabled_reason"] == "successive_build_internal_errors"
    # a trigger deleted meanwhile is left alone
    await builds.update_trigger_disable_status(
        99999, "error", failure_threshold=2, internal_error_threshold=3)


async def test_a_repositorys_builds_are_listed_newest_first(
    quay: QuayDatabase, db: Database
) -> None:
    quay.repository("acme", "app")
    first = quay.start_build("acme", "app")
    second = quay.start_build("acme", "app")
    listed = await QuayBuilds(db).list_for_repository("acme", "app")
    assert [b.uuid for b in listed] == [second.uuid, first.uuid]
    assert [b.uuid for b in await QuayBuilds(db).list_for_repository("acme", "app", limit=1)
            ] == [second.uuid]


@pytest.mark.parametrize(
    ("build_subdir", "context", "expected"),
    [
        ("/Dockerfile", "/", ("/", "Dockerfile")),
        ("/sub/Dockerfile", "/sub", ("/sub", "Dockerfile")),
        ("/sub/Dockerfile", "/", ("/", "sub/Dockerfile")),
        ("sub/Dockerfile", "/sub/", ("/sub/", "Dockerfile")),
        ("/other/Dockerfile", "/sub", ("/other", "Dockerfile")),  # climbs out: split
        ("Dockerfile", "", ("", "Dockerfile")),
        ("", "/ctx", ("/ctx", "")),
    ],
)
def test_dockerfile_path_and_context_as_quay_extracts_them(
    build_subdir: str, context: str, expected: tuple[str, str]
) -> None:
    assert dockerfile_args({"build_subdir": build_subdir, "context": context}) == expected


# --- the BuildPack, as production assembles it ----------------------------------------
# The build is claimed from Quay's queue, so Quay mode's store makes its record from the
# `repositorybuild` row and the queue item's body (quay/store.py new_build_of); the
# QuayBackend's PackParts then feed manager/build_pack.py assemble_build_pack, as a
# worker's registration does (manager/worker_calls.py register).

@pytest_asyncio.fixture
async def backend(quay: QuayDatabase, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[QuayBackend]:
    """Quay mode's backend on `quay`, its user files in LocalStorage served by Quay."""
    storage = tmp_path / "quay-storage"
    storage.mkdir()
    config = parse_config({
        "DB_URI": quay.uri, "DATA_DIR": str(tmp_path / "data"),
        "SERVER_HOSTNAME": quay.server_hostname,
        "PREFERRED_URL_SCHEME": quay.scheme,
        "BUILDLOGS_REDIS": {"host": "127.0.0.1", "port": redis_server.port},
        "DISTRIBUTED_STORAGE_CONFIG": {"local_us": ["LocalStorage",
                                                    {"storage_path": str(storage)}]},
        "DATABASE_SECRET_KEY": SECRET_KEY,
    }).config
    opened = QuayBackend(config)
    await opened.open(NoSignedLinks())
    yield opened
    await opened.close()


class NoSignedLinks:
    """Quay mode signs links only for mounted user files, which these tests do not use."""

    def context(self, record: BuildRecord) -> str:
        raise AssertionError("Quay mode does not sign context links")

    def file(self, file_id: str, purpose: str) -> str:
        raise AssertionError("user files are served by Quay here, not mounted")


async def claimed_record(backend: QuayBackend, build_uuid: str) -> BuildRecord:
    """slipway's record of the build, made as the manager's claim makes it."""
    claimed = await backend.store.queue.claim("test-manager", limit=10, lease_seconds=60)
    assert [item.build_id for item in claimed] == [build_uuid]
    record = await backend.store.builds.get(build_uuid)
    assert record is not None
    return record


async def registered_pack(backend: QuayBackend, record: BuildRecord) -> BuildPack:
    """The BuildPack a worker registering for `record` is handed."""
    package_url = backend.package_url(record)  # asked first, as register asks it
    return await assemble_build_pack(backend, record, job_token="the-job-token",
                                     package_url=package_url)


async def test_the_build_pack_of_an_uploaded_context(
    quay: QuayDatabase, backend: QuayBackend
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app", tags=["v2"], resource_key="../../etc/f00d",
                               subdirectory="/sub/Dockerfile", context="/sub",
                               pull_robot=("acme+puller", "robot-token"))
    pack = await registered_pack(backend, await claimed_record(backend, started.uuid))

    assert pack.package_url == "http://quay.example.test/userfiles/f00d"  # basename only
    assert pack.git_package is None
    assert (pack.context, pack.dockerfile_path) == ("/sub", "Dockerfile")
    assert (pack.repository, pack.registry, pack.tags) == (
        "acme/app", "quay.example.test", ["v2"])
    assert pack.push_token == pack.pull_token == started.token
    assert pack.base_image == Login("acme+puller", "robot-token")
    assert started.token not in repr(pack) and "robot-token" not in repr(pack)


async def test_an_archive_url_comes_before_the_upload(
    quay: QuayDatabase, backend: QuayBackend
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app", resource_key="f00d",
                               archive_url="https://git.example.test/app.tar.gz")
    pack = await registered_pack(backend, await claimed_record(backend, started.uuid))
    assert pack.package_url == "https://git.example.test/app.tar.gz"
    # no pull robot: no base-image login, so the message's is empty
    assert pack.base_image is None
    message = build_pack_message(pack).base_image
    assert (message.username, message.password) == ("", "")


async def test_a_trigger_build_gets_its_git_repository_and_deploy_key(
    quay: QuayDatabase, db: Database, backend: QuayBackend
) -> None:
    repo = quay.repository("acme", "app")
    trigger_id, trigger_uuid = quay.trigger(repo, service="github", private_key=DEPLOY_KEY)
    started = quay.start_build(
        "acme", "app", trigger_id=trigger_id, manual_user=None,
        trigger_metadata={"commit": "0123456789abcdef", "git_url": "git@github.com:acme/app.git",
                          "ref": "refs/heads/main", "default_branch": "main"})
    build = await QuayBuilds(db).get(started.uuid)
    assert build is not None and build.trigger is not None
    assert (build.trigger.uuid, build.trigger.service) == (trigger_uuid, "github")
    assert DEPLOY_KEY not in repr(build)

    record = await claimed_record(backend, started.uuid)
    assert DEPLOY_KEY not in repr(record)
    pack = await registered_pack(backend, record)
    assert pack.git_package is not None and pack.package_url == ""
    assert pack.git_package.url == "git@github.com:acme/app.git"
    assert pack.git_package.sha == "0123456789abcdef"
    assert pack.git_package.private_key == DEPLOY_KEY
    assert DEPLOY_KEY not in repr(pack)


async def test_a_build_with_nothing_to_build_is_refused(
    quay: QuayDatabase, backend: QuayBackend
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    record = await claimed_record(backend, started.uuid)
    with pytest.raises(QuayModeError, match="no archive_url, no uploaded context"):
        backend.package_url(record)
