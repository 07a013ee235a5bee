"""An archived log, read through the API (`GET .../logs?start=`, pages), the live-log
stream (SSE, `Last-Event-ID`) and the web UI (Chromium: a link to a line), is what it was
before it moved to the archive: the same entries, under the same numbers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium, chromium_available
from support.enqueue import enqueue
from support.server import RunningServer, running_server

from slipway.backends.sql import SqlBackend
from slipway.domain.phases import Phase
from slipway.manager.phase_log import phase_entry
from slipway.store.records import LogEntry, NewBuild

LINES = 3000
LIFECYCLE = {"LOG_ARCHIVE": {"ARCHIVE_AFTER": 0}, "RETENTION": {"INTERVAL": 3600}}
WAIT_MS = 60_000  # a safety limit, not a timing test


async def seed_finished_build(slipway: RunningServer) -> str:
    """A finished build of LINES entries (never run: its queue item is taken away)."""
    store = slipway.server.store
    assert slipway.server.control is not None
    record = await enqueue(slipway.server.control, NewBuild(
        namespace="big", repository="log", tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz"))
    async with store.write() as conn:
        await store.queue.remove_for_build(conn, record.id)
    entries = [phase_entry(Phase.BUILDING), LogEntry("STEP 1/1: RUN ./generate", "command")]
    entries += [LogEntry(f"output line {i} \x1b[31mred\x1b[0m <b>x</b>")
                for i in range(2, LINES - 3)]
    entries += [LogEntry("check: 1 problem", "error"), phase_entry(Phase.COMPLETE)]
    await store.logs.append(record.id, entries)
    async with store.write() as conn:
        await store.builds.update(conn, record.id, phase=Phase.COMPLETE, completed=time.time())
    assert await store.logs.count(record.id) == LINES
    return record.id


async def archive_now(slipway: RunningServer, build_id: str) -> None:
    backend = slipway.server.backend
    assert isinstance(backend, SqlBackend)
    report = await backend.housekeeping().run()
    assert report.logs_archived == 1
    record = await slipway.server.store.builds.get(build_id)
    assert record is not None and record.log_archived_at is not None


def sse_events(text: str) -> list[tuple[str, str | None, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append((fields.get("event", ""), fields.get("id"), json.loads(fields["data"])))
    return events


async def api_reads(slipway: RunningServer, build_id: str) -> list[Any]:
    base = f"/api/v1/repository/big/log/build/{build_id}"
    reads: list[Any] = []
    for start in (0, 1, 1234, LINES - 1, LINES, LINES + 10):
        r = await slipway.api.get(f"{base}/logs", params={"start": start})
        assert r.status_code == 200, r.text
        reads.append(r.json())
    stream = await slipway.api.get(f"{base}/logs/stream")
    reads.append(sse_events(stream.text))
    resumed = await slipway.api.get(f"{base}/logs/stream", headers={"Last-Event-ID": "2500"})
    reads.append(sse_events(resumed.text))
    return reads


async def test_an_archived_log_reads_the_same_through_the_api_and_the_stream(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path, **LIFECYCLE) as slipway:
        build_id = await seed_finished_build(slipway)
        before = await api_reads(slipway, build_id)
        await archive_now(slipway, build_id)
        after = await api_reads(slipway, build_id)
        assert after == before
        whole, stream = after[0], after[6]
        assert whole["total"] == LINES and len(whole["logs"]) == LINES
        logs = [e for e in stream if e[0] == "log"]
        assert [e[1] for e in logs] == [str(i) for i in range(LINES)]
        assert [e[2] for e in logs] == whole["logs"]
        assert stream[-1][0] == "end" and stream[-1][2]["phase"] == "complete"
        assert [e[1] for e in after[7] if e[0] == "log"] == [
            str(i) for i in range(2501, LINES)]


@pytest.mark.skipif(not chromium_available(),
                    reason="chromium is not installed (scripts/install-system.sh)")
async def test_the_web_ui_shows_an_archived_log_as_it_showed_it_live(tmp_path: Path) -> None:
    async with running_server(tmp_path, **LIFECYCLE) as slipway, chromium() as browser:
        build_id = await seed_finished_build(slipway)

        async def shown(line: int) -> tuple[str, str, str]:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{slipway.base_url}/")
            await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                                slipway.server.admin_token)
            await page.goto(f"{slipway.base_url}/#/build/big/log/{build_id}/L{line}")
            status = page.get_by_role("status").filter(has_text="lines")
            await status.filter(has_text=f"ended · {LINES:,} lines").wait_for(timeout=WAIT_MS)
            marked = page.locator(".log-line.marked")
            await marked.wait_for(timeout=WAIT_MS)
            result = (await marked.inner_text(), await marked.inner_html(),
                      await status.inner_text())
            await page.context.close()
            return result

        lines = (1, 1234, LINES - 1)
        before = [await shown(n) for n in lines]
        await archive_now(slipway, build_id)
        after = [await shown(n) for n in lines]
        assert after == before
        assert before[1][0] == "1234\noutput line 1232 red <b>x</b>"
        assert before[2][0] == f"{LINES - 1}\ncheck: 1 problem"


async def test_the_manager_archives_ended_logs_by_itself_and_metrics_count_them(
    tmp_path: Path,
) -> None:
    lifecycle = {"LOG_ARCHIVE": {"ARCHIVE_AFTER": 0}, "RETENTION": {"INTERVAL": 0.2}}
    async with running_server(tmp_path, **lifecycle) as slipway:
        build_id = await seed_finished_build(slipway)
        deadline = time.monotonic() + 60  # a safety limit, not a timing test
        # the pass records the log as archived, deletes its rows, then counts it
        while (archived := (await metric_values(slipway)).get(
                "slipway_logs_archived_total", 0.0)) < 1:
            assert time.monotonic() < deadline, "the log was never archived"
            await asyncio.sleep(0.1)
        record = await slipway.server.store.builds.get(build_id)
        assert record is not None and record.log_archived_at is not None
        assert archived >= 1
        assert (tmp_path / "data" / "logarchive" / f"{build_id}.jsonl.gz").is_file()
        assert (await metric_values(slipway))["slipway_database_size_bytes"] > 0


async def metric_values(slipway: RunningServer) -> dict[str, float]:
    text = (await slipway.api.get("/metrics")).text
    return {name: float(value) for name, value in (
        line.rsplit(" ", 1) for line in text.splitlines()
        if line.startswith("slipway_") and " " in line)}


async def test_an_archived_log_that_cannot_be_read_answers_503_and_says_why(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path, **LIFECYCLE) as slipway:
        build_id = await seed_finished_build(slipway)
        await archive_now(slipway, build_id)
        stored = tmp_path / "data" / "logarchive" / f"{build_id}.jsonl.gz"
        stored.unlink()  # the archive lost it (a wiped volume, a bucket's lifecycle rule)
        r = await slipway.api.get(f"/api/v1/repository/big/log/build/{build_id}/logs")
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "30"
        assert r.json()["error_type"] == "archive_unavailable"
        message = r.json()["error_message"]
        assert message.startswith("log archive (") and f"{build_id}.jsonl.gz" in message, message
        # the build itself still answers
        build = await slipway.api.get(f"/api/v1/repository/big/log/build/{build_id}")
        assert build.status_code == 200, build.text
