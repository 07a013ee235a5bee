"""The log archive (store/log_archive.py, store/log_archiving.py): an ended build's log is
written as one gzip'd JSON Lines object and leaves the database, and every read of it,
whole or by pages, returns what it returned before, on SQLite and PostgreSQL, in a
directory and in S3 (moto server)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.lifecycle import make_build, object_keys, s3_bucket
from support.postgres_server import PostgresServer

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.housekeeping import HousekeepingPolicy
from slipway.store.log_archive import ArchiveUnavailable, DirectoryStorage, LogArchive
from slipway.store.records import LogEntry
from slipway.store.schema import build_logs

ARCHIVE_ONLY = HousekeepingPolicy(archive_after=0, retention=False)
# (start, limit) of the reads compared: whole, pages, the last page, past the end
PAGES = [(0, None), (0, 100), (100, 250), (950, 100), (1000, 5), (1233, None), (1500, 10)]


@pytest.fixture(params=["sqlite-directory", "postgresql-s3"])
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def archive(where: str, tmp_path: Path) -> Iterator[LogArchive]:
    if where.endswith("s3"):
        with s3_bucket() as storage:
            yield LogArchive(storage, "logarchive/")
    else:
        yield LogArchive(DirectoryStorage(tmp_path / "logarchive"))


@pytest.fixture
async def store(where: str, archive: LogArchive, tmp_path: Path,
                request: pytest.FixtureRequest) -> AsyncIterator[SqlStore]:
    if where.startswith("sqlite"):
        uri = f"sqlite:///{tmp_path}/a.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        uri = server.create_database()
    s = await SqlStore(uri, archive).open()
    yield s
    await s.close()


async def rows_in_table(store: SqlStore, build_id: str) -> int:
    async with store.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(build_logs).where(
            build_logs.c.build_id == build_id)) or 0)


async def pages(store: SqlStore, build_id: str) -> list[tuple[int, list[LogEntry]]]:
    return [await store.logs.read(build_id, start, limit) for start, limit in PAGES]


async def test_an_archived_log_reads_as_it_did_live(
    store: SqlStore, archive: LogArchive, where: str
) -> None:
    ended = await make_build(store, lines=1234)
    running = await make_build(store, phase=Phase.BUILDING, lines=20)
    before = await pages(store, ended)
    assert before[0][0] == 1234 and len(before[0][1]) == 1234

    report = await store.housekeeping(ARCHIVE_ONLY).run()

    assert (report.logs_archived, report.log_lines_archived) == (1, 1234)
    assert report.archive_bytes_written > 0
    assert await rows_in_table(store, ended) == 0  # gone from the database
    assert await rows_in_table(store, running) == 20  # a running build's log stays
    record = await store.builds.get(ended)
    assert record is not None and record.log_archived_at is not None
    assert record.log_count == 1234
    archive._cache.clear()  # read from the storage, not from what was just written
    assert await pages(store, ended) == before
    assert await store.logs.count(ended) == 1234
    if where.endswith("s3"):
        assert object_keys(archive.storage) == {f"logarchive/{ended}.jsonl.gz"}  # type: ignore[arg-type]


async def test_the_archive_object_is_gzipped_json_lines_of_the_api_entries(
    tmp_path: Path,
) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path / "logarchive"))
    store = await SqlStore(f"sqlite:///{tmp_path}/a.db", archive).open()
    try:
        build_id = await make_build(store, lines=100)
        _, live = await store.logs.read(build_id)
        await store.housekeeping(ARCHIVE_ONLY).run()
        blob = (tmp_path / "logarchive" / f"{build_id}.jsonl.gz").read_bytes()
        lines = gzip.decompress(blob).decode().splitlines()
        assert [json.loads(line) for line in lines] == [e.as_api() for e in live]
    finally:
        await store.close()


async def test_a_log_is_archived_only_after_its_build_ends_and_the_delay(
    tmp_path: Path,
) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path / "logarchive"))
    store = await SqlStore(f"sqlite:///{tmp_path}/a.db", archive).open()
    try:
        just_ended = await make_build(store, lines=10)
        waiting = await make_build(store, phase=Phase.WAITING, age_days=30, lines=10)
        policy = HousekeepingPolicy(archive_after=3600, retention=False)
        report = await store.housekeeping(policy).run()
        assert report.logs_archived == 0
        assert await rows_in_table(store, just_ended) == 10
        assert await rows_in_table(store, waiting) == 10
    finally:
        await store.close()


async def test_when_the_archive_cannot_be_written_the_log_stays_in_the_database(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive directory should be")
    store = await SqlStore(f"sqlite:///{tmp_path}/a.db",
                           LogArchive(DirectoryStorage(blocked))).open()
    try:
        build_id = await make_build(store, lines=10)
        before = await store.logs.read(build_id)
        report = await store.housekeeping(ARCHIVE_ONLY).run()
        assert report.logs_archived == 0 and report.logs_left == 1
        assert await store.logs.read(build_id) == before
        record = await store.builds.get(build_id)
        assert record is not None and record.log_archived_at is None
    finally:
        await store.close()


async def test_a_missing_archive_object_is_an_error_that_names_the_build(
    tmp_path: Path,
) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path / "logarchive"))
    store = await SqlStore(f"sqlite:///{tmp_path}/a.db", archive).open()
    try:
        build_id = await make_build(store, lines=10)
        await store.housekeeping(ARCHIVE_ONLY).run()
        (tmp_path / "logarchive" / f"{build_id}.jsonl.gz").unlink()
        archive._cache.clear()
        with pytest.raises(ArchiveUnavailable, match=build_id):
            await store.logs.read(build_id)
    finally:
        await store.close()
