"""A long log's first screen in a real headless Chromium: the build page shows the log's end
(where it opens) while the rest of the log is still on its way, then the rest fills in
under the right line numbers; a running build's log still follows live.

"Still on its way" is made certain, not left to timing: the browser holds back every
request whose answer would carry the middle of the log (the part no first screen needs)
until the test lets it go."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from support.browser import chromium_available, screenshot
from support.enqueue import enqueue
from support.server import RunningServer, running_server
from test_ui import (
    WAIT_MS,
    browser,
    cli_home,
    in_view,
    page_errors,
    seed_finished_build,
    signed_in_page,
)

from slipway.domain.phases import Phase
from slipway.manager.phase_log import phase_entry
from slipway.store.records import LogEntry, NewBuild

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

__all__ = ["browser", "cli_home"]  # the fixtures, used by name

# lines at each end of the log a first screen may use (the page asks for 500)
EDGE = 500
# waiting for what the page shows while the rest is held back: a safety limit, not a
# timing test (a page that waits for the held part never shows it)
HELD_WAIT_MS = 30_000


class HeldLog:
    """Holds back, in the browser, each request for the log's middle (entries EDGE to
    total - EDGE), through `GET .../logs` or the stream, until `release()`."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.released = asyncio.Event()
        self.held: list[str] = []

    def carries_the_middle(self, url: str) -> bool:
        parts = urlparse(url)
        query = parse_qs(parts.query)
        start = int(query.get("start", ["0"])[0])
        if parts.path.endswith("/logs/stream"):
            return start < self.total - EDGE
        limit = int(query["limit"][0]) if "limit" in query else None
        return start < self.total - EDGE and (limit is None or start + limit > EDGE)

    async def route(self, route: Any) -> None:
        if self.carries_the_middle(route.request.url) and not self.released.is_set():
            self.held.append(route.request.url)
            await self.released.wait()
        await route.continue_()

    async def attach(self, page: Any) -> None:
        await page.route(re.compile(r".*/logs(/stream)?(\?.*)?$"), self.route)

    def release(self) -> None:
        self.released.set()


def stepped_log(lines: int, first_error: int) -> list[LogEntry]:
    """A log of `lines` entries with the one a build starts with ("waiting"): two steps,
    the first (and longest) with an error at line `first_error`, the second ending in the
    last lines."""
    entries = [phase_entry(Phase.BUILDING), LogEntry("STEP 1/2: RUN make all", "command")]
    while len(entries) < first_error - 2:
        entries.append(LogEntry(f"cc -c src/part{len(entries) + 2}.c"))
    entries.append(LogEntry("src/config.h:12: error: unknown type name 'size'", "error"))
    while len(entries) < lines - 6:
        entries.append(LogEntry(f"cc -c src/part{len(entries) + 2}.c"))
    entries += [LogEntry("STEP 2/2: RUN make check", "command"),
                LogEntry("check: all passed"), LogEntry("COMMIT big/log:latest"),
                phase_entry(Phase.PUSHING), phase_entry(Phase.COMPLETE)]
    assert len(entries) == lines - 1
    return entries


async def status_text(page: Any) -> str:
    return str(await page.locator(".log-status").inner_text())


async def line_at(page: Any, n: int) -> Any:
    """Line `n`, brought into view with Go to line; its locator."""
    await page.get_by_label("Go to line").fill(str(n))
    await page.keyboard.press("Enter")
    marked = page.locator(".log-line.marked")
    await marked.locator(".ln", has_text=re.compile(rf"^{n}$")).wait_for(timeout=WAIT_MS)
    return marked


async def open_with_middle_held(browser: Any, slipway: RunningServer, lines: int,
                                route: str) -> tuple[HeldLog, Any, list[str]]:
    """The build page at `route` opened afresh at 1400x900, the log's middle held back;
    the holder, the page and its errors."""
    held = HeldLog(lines)
    page = await signed_in_page(browser, slipway, "#/", viewport={"width": 1400, "height": 900})
    errors = page_errors(page)
    await held.attach(page)
    await page.goto(f"{slipway.base_url}/{route}")
    return held, page, errors


async def test_a_long_logs_end_is_shown_while_the_rest_is_still_arriving(
    tmp_path: Path, browser: Any
) -> None:
    lines = 30_000
    async with running_server(tmp_path) as slipway:
        entries = stepped_log(lines, first_error=12_000)
        messages = ["waiting"] + [e.message for e in entries]
        build_id = await seed_finished_build(slipway, "big", "log", entries,
                                             phase=Phase.COMPLETE)
        held, page, errors = await open_with_middle_held(browser, slipway, lines,
                                                         f"#/build/big/log/{build_id}")

        # the log's end, where the page opens, while its middle has not arrived
        last = page.locator(".log-line", has_text="phase: complete")
        await last.wait_for(timeout=HELD_WAIT_MS)
        assert held.held and not held.released.is_set()
        assert await last.locator(".ln").inner_text() == f"{lines}"
        assert await in_view(page, last)
        before = page.locator(".log-line", has_text="COMMIT big/log:latest")
        assert await before.locator(".ln").inner_text() == f"{lines - 2}"
        # the page says the log is not all there, and how long it is
        assert re.fullmatch(rf"ended · \d+% of {lines:,} lines", await status_text(page))
        assert await page.locator(".log-line").count() < 300  # still virtual
        await screenshot(page, "build-log-first-screen", tmp_path)

        # a line of the end can be gone to already; one of the middle is shown when it
        # arrives
        marked = await line_at(page, lines - 100)
        assert await marked.locator(".msg").inner_text() == messages[lines - 101]
        await page.get_by_label("Go to line").fill("15000")
        await page.keyboard.press("Enter")
        await page.get_by_text("Line 15,000 is loading; it is shown when it arrives.").wait_for()

        held.release()
        marked = page.locator(".log-line.marked")
        await marked.locator(".ln", has_text=re.compile(r"^15000$")).wait_for(timeout=WAIT_MS)
        assert await marked.locator(".msg").inner_text() == messages[14_999]
        assert await in_view(page, marked)
        await page.get_by_role("status").filter(
            has_text=f"ended · {lines:,} lines").wait_for(timeout=WAIT_MS)

        # every line under its own number, the ends and the middle alike
        for n in (1, 2, 499, 500, 501, 12_000, 29_499, 29_500, 29_501, lines):
            marked = await line_at(page, n)
            assert await marked.locator(".msg").inner_text() in (
                messages[n - 1], f"phase: {messages[n - 1]}"), n
        # the end's lines now know their step: indented under it, and the step folds
        marked = await line_at(page, lines - 5)
        assert "indent" in (await marked.locator(".msg").get_attribute("class") or "")
        step = page.locator(".log-line", has_text="STEP 2/2").locator("button.fold")
        await step.click()
        await page.locator(".log-line .count", has_text="2 lines folded").wait_for()
        # the first error is the one in the middle
        await page.get_by_role("button", name="First error").click()
        await page.locator(".log-line.marked .ln", has_text=re.compile(r"^12000$")).wait_for()
        assert errors == []


async def seed_running_build(slipway: RunningServer, entries: list[LogEntry]) -> str:
    """A build that is building (no worker: it was claimed away first) with `entries`."""
    store = slipway.server.store
    assert slipway.server.control is not None
    record = await enqueue(slipway.server.control, NewBuild(
        namespace="team", repository="live", tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz"))
    async with store.db.write() as conn:
        await store.queue.remove_for_build(conn, record.id)
    await store.logs.append(record.id, entries)
    async with store.db.write() as conn:
        await store.builds.update(conn, record.id, phase=Phase.BUILDING)
    return record.id


async def test_a_running_builds_long_log_follows_live_while_its_middle_arrives(
    tmp_path: Path, browser: Any
) -> None:
    lines = 12_000
    async with running_server(tmp_path) as slipway:
        store = slipway.server.store
        entries = [phase_entry(Phase.BUILDING), LogEntry("STEP 1/1: RUN ./long", "command")]
        entries += [LogEntry(f"tick {i}") for i in range(len(entries) + 2, lines + 1)]
        build_id = await seed_running_build(slipway, entries)
        held, page, errors = await open_with_middle_held(browser, slipway, lines,
                                                         f"#/build/team/live/{build_id}")
        log = page.locator(".log-window")
        await log.get_by_text(f"tick {lines}", exact=True).wait_for(timeout=HELD_WAIT_MS)

        # new lines arrive at the end and the view follows them, the middle still held
        await store.logs.append(build_id, [LogEntry(f"tick {n}")
                                           for n in range(lines + 1, lines + 21)])
        newest = log.locator(".log-line", has_text=re.compile(rf"^\d+\s*tick {lines + 20}$"))
        await newest.wait_for(timeout=HELD_WAIT_MS)
        assert not held.released.is_set()
        assert await newest.locator(".ln").inner_text() == f"{lines + 20}"
        assert await in_view(page, newest)
        assert re.fullmatch(rf"live · \d+% of {lines + 20:,} lines", await status_text(page))
        assert await page.get_by_role("button", name="Following the end").count() == 1

        held.release()
        await page.get_by_role("status").filter(
            has_text=f"live · {lines + 20:,} lines").wait_for(timeout=WAIT_MS)
        # still following: more lines, still in view; then the build ends
        await store.logs.append(build_id, [LogEntry("tick last"), phase_entry(Phase.COMPLETE)])
        async with store.db.write() as conn:
            await store.builds.update(conn, build_id, phase=Phase.COMPLETE)
        await page.get_by_role("status").filter(
            has_text=f"ended · {lines + 22:,} lines").wait_for(timeout=WAIT_MS)
        done = log.locator(".log-line", has_text="tick last")
        assert await done.locator(".ln").inner_text() == f"{lines + 21}"
        assert await in_view(page, done)
        # the phases, in order, from the log's first lines to its last
        timeline = page.locator("ol.timeline")
        assert re.search(r"waiting.*building.*complete", (await timeline.inner_text()).replace(
            "\n", " "))
        marked = await line_at(page, 6000)
        assert await marked.locator(".msg").inner_text() == "tick 6000"
        assert errors == []
