"""Retention (store/retention.py) and the context clean-up (store/uploads.py) delete
exactly what the policy says, on SQLite and PostgreSQL, with archived logs in a directory
and in S3 (moto server): builds past their namespace's age, except each repository's
newest KEEP_LAST and any build that has not ended; uploaded contexts once their builds
ended and the grace passed. A dry run counts the same and changes nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from support.lifecycle import make_build, object_keys, s3_bucket
from support.postgres_server import PostgresServer

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.housekeeping import HousekeepingPolicy
from slipway.store.log_archive import DirectoryStorage, LogArchive
from slipway.store.retention import RetentionPolicy
from slipway.store.schema import build_logs, builds

POLICY = RetentionPolicy(default_days=30, namespaces={"team": 7, "forever": None},
                         keep_last=2)


def policy(**changes: object) -> HousekeepingPolicy:
    values: dict[str, object] = {"archive_after": 0, "policy": POLICY, "context_grace": 3600,
                                 "batch_size": 3, "pause": 0}
    values.update(changes)
    return HousekeepingPolicy(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite-directory", "postgresql-s3"])
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def archive(where: str, tmp_path: Path) -> Iterator[LogArchive]:
    if where.endswith("s3"):
        with s3_bucket() as storage:
            yield LogArchive(storage, "logs/")
    else:
        yield LogArchive(DirectoryStorage(tmp_path / "logarchive"))


@pytest.fixture
async def store(where: str, archive: LogArchive, tmp_path: Path,
                request: pytest.FixtureRequest) -> AsyncIterator[SqlStore]:
    if where.startswith("sqlite"):
        uri = f"sqlite:///{tmp_path}/r.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        uri = server.create_database()
    s = await SqlStore(uri, archive).open()
    yield s
    await s.close()


async def build_ids(store: SqlStore) -> set[str]:
    async with store.db.read() as conn:
        return {str(i) for i in (await conn.execute(select(builds.c.id))).scalars()}


async def log_rows(store: SqlStore) -> int:
    async with store.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(build_logs)) or 0)


async def test_retention_deletes_exactly_what_its_policy_says(
    store: SqlStore, archive: LogArchive, where: str
) -> None:
    now = time.time()
    made: dict[str, str] = {}

    async def build(name: str, namespace: str, repository: str, age: float,
                    phase: Phase = Phase.COMPLETE) -> None:
        made[name] = await make_build(store, namespace, repository, phase=phase,
                                      age_days=age, lines=5, now=now)

    # acme/web (default 30 days); a build made below, now, is its newest
    await build("web-100d", "acme", "web", 100)
    await build("web-90d-running", "acme", "web", 90, Phase.BUILDING)  # never touched
    await build("web-60d-error", "acme", "web", 60, Phase.ERROR)
    await build("web-40d-cancelled", "acme", "web", 40, Phase.CANCELLED)
    await build("web-20d", "acme", "web", 20)  # younger than 30 days
    # acme/lib: the newest two are kept whatever their age (KEEP_LAST)
    await build("lib-35d", "acme", "lib", 35)
    await build("lib-33d-kept", "acme", "lib", 33)
    await build("lib-31d-kept", "acme", "lib", 31)
    # team (7 days)
    await build("team-10d", "team", "app", 10)
    await build("team-8d", "team", "app", 8)
    await build("team-5d", "team", "app", 5)
    await build("team-3d-kept", "team", "app", 3)
    await build("team-1d-kept", "team", "app", 1)
    # forever (null): never
    for age in (400, 300, 200):
        await build(f"forever-{age}d", "forever", "old", age)
    await build("waiting-500d", "acme", "queue", 500, Phase.WAITING)
    for age in (3, 2, 1):
        await build(f"queue-{age}d", "acme", "queue", age)
    # logs archived first (a pass with retention off), so both kinds are deleted below
    await store.housekeeping(policy(retention=False)).run(now=now)
    await make_build(store, "acme", "web", age_days=0, lines=5, now=now)  # not archived yet
    expected = {made[n] for n in ("web-100d", "web-60d-error", "web-40d-cancelled",
                                  "lib-35d", "team-10d", "team-8d")}
    before = await build_ids(store)

    dry = await store.housekeeping(policy()).run(dry_run=True, now=now)
    assert await build_ids(store) == before  # a dry run removes nothing
    assert dry.builds_deleted == len(expected) and dry.archives_deleted == len(expected)
    assert dry.archive_bytes_deleted > 0

    report = await store.housekeeping(policy()).run(now=now)

    assert before - await build_ids(store) == expected
    assert report.builds_deleted == len(expected) == report.archives_deleted
    assert report.archive_bytes_deleted == dry.archive_bytes_deleted
    for build_id in expected:
        assert await store.builds.get(build_id) is None
    if where.endswith("s3"):
        keys = object_keys(archive.storage)  # type: ignore[arg-type]
        assert not {f"logs/{i}.jsonl.gz" for i in expected} & keys
        assert f"logs/{made['lib-33d-kept']}.jsonl.gz" in keys
    # the running and the waiting builds are untouched, their logs in the database
    for name in ("web-90d-running", "waiting-500d"):
        record = await store.builds.get(made[name])
        assert record is not None and record.log_archived_at is None
        assert (await store.logs.read(made[name]))[0] == 5
    again = await store.housekeeping(policy()).run(now=now)
    assert again.builds_deleted == 0


async def test_logs_still_in_the_database_are_deleted_with_their_builds(
    store: SqlStore,
) -> None:
    now = time.time()
    old = [await make_build(store, "team", "app", age_days=30 - i, lines=7, now=now)
           for i in range(4)]
    kept = [await make_build(store, "team", "app", age_days=1, lines=7, now=now)
            for _ in range(2)]
    report = await store.housekeeping(policy(archive_logs=False)).run(now=now)
    assert report.builds_deleted == 4 and report.log_lines_deleted == 4 * 7
    assert await build_ids(store) == set(kept)
    assert await log_rows(store) == 2 * 7
    assert not set(old) & await build_ids(store)


async def test_an_uploaded_context_goes_after_its_builds_end_and_the_grace(
    store: SqlStore, tmp_path: Path,
) -> None:
    now = time.time()

    async def context(name: str) -> tuple[str, Path]:
        file_id = await store.uploads.create("application/gzip", "acme")
        path = tmp_path / name
        path.write_bytes(b"x" * 1000)
        await store.uploads.received(file_id, path, 1000)
        return file_id, path

    done, done_path = await context("done")
    recent, recent_path = await context("recent")
    again, again_path = await context("again")
    await make_build(store, resource_key=done, age_days=2 / 24, now=now)  # 2 hours ago
    await make_build(store, resource_key=recent, age_days=0.5 / 24, now=now)  # in grace
    # "build again" reuses the upload: kept while any of its builds runs
    await make_build(store, resource_key=again, age_days=2 / 24, now=now)
    await make_build(store, resource_key=again, phase=Phase.BUILDING, now=now)

    dry = await store.housekeeping(policy()).run(dry_run=True, now=now)
    assert (dry.contexts_deleted, dry.context_bytes_deleted) == (1, 1000)
    assert done_path.exists()

    report = await store.housekeeping(policy()).run(now=now)

    assert (report.contexts_deleted, report.context_bytes_deleted) == (1, 1000)
    assert not done_path.exists() and await store.uploads.get(done) is None
    assert recent_path.exists() and (await store.uploads.get(recent)) is not None
    assert again_path.exists() and (await store.uploads.get(again)) is not None


async def test_sqlite_gives_freed_pages_back_after_a_pass(tmp_path: Path) -> None:
    store = await SqlStore(f"sqlite:///{tmp_path}/v.db").open()
    try:
        async with store.db.read() as conn:
            assert await conn.scalar(text("PRAGMA auto_vacuum")) == 2  # INCREMENTAL
        now = time.time()
        for i in range(30):
            await make_build(store, "acme", f"r{i % 3}", age_days=100, lines=400, now=now)
        grown = (await store.housekeeping(policy(archive_logs=False)).run(
            dry_run=True, now=now)).database_size
        report = await store.housekeeping(policy(archive_logs=False, batch_size=500)).run(
            now=now)
        assert report.builds_deleted == 30 - 3 * 2
        assert report.database_bytes_freed > 0
        assert report.database_size < grown
    finally:
        await store.close()
