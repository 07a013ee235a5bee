"""Log lines from many streams are committed together, in order, and a line is only
acknowledged once stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from support.enqueue import record_and_queue

from slipway.manager.log_writer import LogWriter
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry, NewBuild


@pytest.fixture
async def store_and_writer(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await SqlStore(f"sqlite:///{tmp_path}/l.db").open()
    writer = LogWriter(store)
    yield store, writer
    await writer.close()
    await store.close()


async def _build(store: SqlStore, repo: str) -> str:
    record = await record_and_queue(store, NewBuild(
        namespace="ns", repository=repo, tags=["latest"], registry="r:5000"))
    return record.id


async def test_concurrent_streams_keep_their_order_and_all_lines(store_and_writer) -> None:  # type: ignore[no-untyped-def]
    store, writer = store_and_writer
    builds = [await _build(store, f"r{i}") for i in range(20)]

    async def stream(build_id: str) -> None:
        for chunk in range(10):
            refused = await writer.append(
                {build_id: [LogEntry(f"{chunk}-{n}") for n in range(5)]})
            assert refused == set()

    await asyncio.gather(*(stream(b) for b in builds))
    for build_id in builds:
        total, entries = await store.logs.read(build_id)
        assert total == 50
        assert [e.message for e in entries] == [
            f"{c}-{n}" for c in range(10) for n in range(5)]


async def test_lines_of_a_missing_build_are_refused_and_others_kept(store_and_writer) -> None:  # type: ignore[no-untyped-def]
    store, writer = store_and_writer
    real = await _build(store, "real")
    refused, kept = await asyncio.gather(
        writer.append({"no-such-build": [LogEntry("lost")]}),
        writer.append({real: [LogEntry("kept")]}),
    )
    assert refused == {"no-such-build"}
    assert kept == set()
    assert [e.message for e in (await store.logs.read(real))[1]] == ["kept"]


async def test_a_failed_write_is_not_acknowledged_and_changes_nothing(store_and_writer) -> None:  # type: ignore[no-untyped-def]
    store, writer = store_and_writer
    real = await _build(store, "real")
    async with store.db.write() as conn:  # the insert of the lines will fail
        await conn.execute(text("ALTER TABLE slipway_build_logs RENAME TO build_logs_gone"))
    with pytest.raises(OperationalError):
        await writer.append({real: [LogEntry("x")]})
    assert await store.logs.count(real) == 0  # the counter update was rolled back
