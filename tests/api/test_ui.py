"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real
slipway: sign-in, builds followed live while a real worker builds, cancel, a 100,000-line
log, a failed build's error, starting a build from the form, the manager's state."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from support.archives import tar_gz
from support.browser import chromium, chromium_available, screenshot
from support.enqueue import enqueue
from support.fileserver import serve_files
from support.registry import Registry
from support.server import RunningServer, running_server

from slipway.api.ui import sign_in_link
from slipway.domain.phases import Phase
from slipway.manager.phase_log import phase_entry
from slipway.store.records import LogEntry, NewBuild

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

WAIT_MS = 120_000  # a safety limit for real builds, not a timing test
PULL_SECRET = "pull-pa55word-never-shown"
PUSH_SECRET = "push-pa55word-never-shown"


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def signed_in_page(browser: Any, slipway: RunningServer, path: str = "#/",
                         **context: Any) -> Any:
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{slipway.base_url}/")
    await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                        slipway.server.admin_token)
    await page.goto(f"{slipway.base_url}/{path}")
    return page


def page_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


async def log_lines(page: Any) -> int:
    """The number of log lines the page says it has."""
    text = await page.locator(".log-status").inner_text()
    return int(text.split(" · ")[1].split()[0].replace(",", ""))


async def more_lines(page: Any, at_least: int) -> None:
    await page.wait_for_function(
        "n => Number(document.querySelector('.log-status').textContent"
        ".split(' · ')[1].split(' ')[0].replace(/,/g, '')) >= n", arg=at_least, timeout=WAIT_MS)


def registry_config(registry: Registry) -> dict[str, Any]:
    return {"SERVER_HOSTNAME": registry.host, "INSECURE_REGISTRIES": [registry.host]}


async def test_sign_in_refuses_a_wrong_token_and_the_link_signs_in(
    tmp_path: Path, browser: Any
) -> None:
    async with running_server(tmp_path) as slipway:
        page = await (await browser.new_context()).new_page()
        errors = page_errors(page)
        await page.goto(f"{slipway.base_url}/")
        await page.get_by_role("heading", name="Sign in to slipway").wait_for()
        # the token field has the focus and a label; the keyboard alone signs in
        assert await page.evaluate("document.activeElement.id") == "token"
        assert await page.get_by_label("API token").count() == 1
        await page.keyboard.type("slw_wrong-token")
        await page.keyboard.press("Enter")
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert await alert.inner_text() == "Cannot sign in: the API token is not valid"
        await screenshot(page, "sign-in-error", tmp_path)

        link = sign_in_link(slipway.base_url, str(slipway.server.admin_token))
        await page.goto(link)
        await page.get_by_role("heading", name="Repositories").wait_for()
        assert page.url == f"{slipway.base_url}/#/"  # the token left the address bar
        assert str(slipway.server.admin_token) not in await page.evaluate(
            "location.href + document.body.innerText")
        assert "Signed in as admin" in await page.locator("#whoami").inner_text()
        # the list is drawn once its builds are read, after the heading
        await page.get_by_text("No builds yet.").wait_for(timeout=WAIT_MS)
        assert await page.get_by_text("No builds yet.").count() == 1

        # a token that stops working (revoked, or another server's) signs the tab out
        # set and reloaded in one task: the list's refresh cannot come between
        async with page.expect_navigation():
            await page.evaluate(
                "sessionStorage.setItem('slipway.token', 'slw_revoked'); location.reload()")
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert await alert.inner_text() == (
            "Signed out: the API token is not valid; sign in again")
        await page.get_by_role("button", name="Sign in").wait_for()
        # the browser's console says nothing but the refused requests
        assert all("401" in e for e in errors), errors


async def seed_long_build(slipway: RunningServer, lines: int) -> tuple[str, list[str]]:
    """A finished build whose log has `lines` entries, written as a manager writes them;
    returns its id and the messages, in order."""
    store = slipway.server.store
    assert slipway.server.control is not None
    record = await enqueue(slipway.server.control, NewBuild(
        namespace="big", repository="log", tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz",
        pull_credentials={"username": "puller", "password": PULL_SECRET}))
    # claimed first, so the manager in this process never starts a worker for it
    async with store.db.write() as conn:
        await store.queue.remove_for_build(conn, record.id)
    entries = [phase_entry(Phase.BUILDING), LogEntry("STEP 1/2: RUN ./generate", "command")]
    entries += [LogEntry(f"output line {i}") for i in range(1, lines - 7)]
    entries += [
        LogEntry("\x1b[31mred warning\x1b[0m and \x1b[1;32mbold green\x1b[0m"),
        LogEntry("<img src=x onerror=alert(1)> is text"),
        LogEntry("STEP 2/2: RUN ./check", "command"),
        LogEntry("check: 1 problem", "error"),
        phase_entry(Phase.COMPLETE),
    ]
    messages = ["waiting"] + [e.message for e in entries]
    while len(messages) < lines:  # pad to exactly `lines`
        entries.insert(2, LogEntry("padding"))
        messages.insert(3, "padding")
    await store.logs.append(record.id, entries)
    async with store.db.write() as conn:
        await store.builds.update(conn, record.id, phase=Phase.COMPLETE, completed=time.time(),
                                  image_digest="sha256:" + "d" * 64)
    return record.id, messages


async def test_a_finished_100000_line_log_stays_virtual_and_jumps_to_a_line(
    tmp_path: Path, browser: Any
) -> None:
    async with running_server(
        tmp_path, REGISTRY_CREDENTIALS={"127.0.0.1:1": {"username": "pusher",
                                                        "password": PUSH_SECRET}},
    ) as slipway:
        build_id, messages = await seed_long_build(slipway, 100_000)
        assert len(messages) == 100_000
        page = await (await browser.new_context()).new_page()
        bodies: list[str] = []

        async def keep(response: Any) -> None:
            if "/api/" in response.url:
                try:
                    bodies.append(await response.text())
                except Exception:  # a stream still open when the page moves on
                    pass

        page.on("response", keep)
        await page.goto(f"{slipway.base_url}/")
        await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                            slipway.server.admin_token)
        await page.goto(f"{slipway.base_url}/#/build/big/log/{build_id}")
        status = page.get_by_role("status").filter(has_text="lines")
        await status.filter(has_text="ended · 100,000 lines").wait_for(timeout=WAIT_MS)
        # virtualised: a few dozen lines in the DOM, not 100,000
        assert await page.locator(".log-line").count() < 300
        # it followed the end: the last line is in view
        await page.locator(".log-line", has_text="phase: complete").wait_for()

        await page.get_by_label("Go to line").fill("73456")
        await page.keyboard.press("Enter")
        marked = page.locator(".log-line.marked")
        await marked.wait_for()
        assert page.url.endswith(f"/build/big/log/{build_id}/L73456")
        assert await marked.locator(".ln").inner_text() == "73456"
        assert await marked.locator(".msg").inner_text() == messages[73455]
        assert await in_view(page, marked)

        # a link to a line, opened anew, shows that line
        other = await signed_in_page(browser, slipway, f"#/build/big/log/{build_id}/L99999")
        marked = other.locator(".log-line.marked")
        await marked.wait_for(timeout=WAIT_MS)
        assert await marked.inner_text() == "99999\ncheck: 1 problem"
        assert "log-error" in (await marked.get_attribute("class") or "")
        assert await in_view(other, marked)

        # ANSI colours become styled text; markup in the log stays text
        red = other.locator(".log-line .ansi-fg-1", has_text="red warning")
        await other.get_by_label("Go to line").fill(str(messages.index(
            "\x1b[31mred warning\x1b[0m and \x1b[1;32mbold green\x1b[0m") + 1))
        await other.keyboard.press("Enter")
        await red.wait_for()
        green = other.locator(".log-line span.ansi-fg-2.ansi-bold")
        assert await green.inner_text() == "bold green"
        assert "\x1b" not in await other.locator(".log-window").inner_text()
        assert await other.locator(".log-window img").count() == 0
        assert await other.get_by_text("<img src=x onerror=alert(1)> is text").count() == 1

        # the step folds: its lines go, the next step's header stays
        first_step = other.locator(".log-line", has_text="STEP 1/2").locator("button.fold")
        await other.get_by_label("Go to line").fill("3")
        await other.keyboard.press("Enter")
        await first_step.focus()  # by keyboard: the fold is a button
        await other.keyboard.press("Enter")
        folded = messages.index("STEP 2/2: RUN ./check") - messages.index(
            "STEP 1/2: RUN ./generate") - 1
        await other.locator(".log-line .count", has_text=f"{folded:,} lines folded").wait_for()
        assert await other.locator(".log-line", has_text="STEP 2/2").count() == 1
        assert await first_step.get_attribute("aria-expanded") == "false"
        await screenshot(other, "build-100k-lines", tmp_path)
        # the focus stays on the fold as the lines are drawn again; Enter unfolds
        assert await other.evaluate("document.activeElement.className") == "fold"
        await other.keyboard.press("Enter")
        await other.locator(".log-line", has_text="STEP 1/2").locator(
            "button.fold[aria-expanded=true]").wait_for()
        await other.locator(".log-line", has_text="output line 1").first.wait_for()

    for secret in (PULL_SECRET, PUSH_SECRET):
        assert not any(secret in body for body in bodies)
    assert any(build_id in body for body in bodies)  # the responses were seen


async def in_view(page: Any, locator: Any) -> bool:
    """The line is in the log's view and the log's view in the window: a user sees it."""
    box = await locator.bounding_box()
    scroller = await page.locator(".log-scroll").bounding_box()
    window = page.viewport_size
    return bool(box and scroller and box["y"] >= scroller["y"]
                and box["y"] + box["height"] <= scroller["y"] + scroller["height"]
                and box["y"] >= 0 and box["y"] + box["height"] <= window["height"])


async def seed_finished_build(slipway: RunningServer, namespace: str, repository: str,
                              entries: list[LogEntry], **values: Any) -> str:
    """A build that ended with `values` (phase, error, attempts...) and the log `entries`,
    written as a manager writes them; its id."""
    store = slipway.server.store
    assert slipway.server.control is not None
    record = await enqueue(slipway.server.control, NewBuild(
        namespace=namespace, repository=repository, tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz"))
    async with store.db.write() as conn:  # claimed first: no worker is started for it
        await store.queue.remove_for_build(conn, record.id)
    await store.logs.append(record.id, entries)
    async with store.db.write() as conn:
        await store.builds.update(conn, record.id, completed=time.time(), **values)
    return record.id


async def seed_user_error(slipway: RunningServer, lines: int, first_error: int) -> str:
    """A build that failed by its own error (phase error), with a log of `lines` lines
    whose first error entry is line `first_error`."""
    now = time.time()
    entries = [phase_entry(Phase.BUILDING), LogEntry("STEP 1/2: RUN make all", "command")]
    while len(entries) < first_error - 2:
        entries.append(LogEntry(f"cc -c src/part{len(entries)}.c"))
    entries.append(LogEntry("src/config.h:12: error: unknown type name 'size'", "error"))
    while len(entries) < lines - 4:
        entries.append(LogEntry(f"cc -c src/other{len(entries)}.c"))
    entries += [LogEntry("make: *** [Makefile:9: all] Error 2"),
                LogEntry("RUN make all: exit status 2", "error"), phase_entry(Phase.ERROR)]
    assert len(entries) == lines - 1  # with the "waiting" entry the build starts with
    return await seed_finished_build(
        slipway, "team", "compiler", entries, phase=Phase.ERROR,
        error="RUN make all: exit status 2",
        attempts=[{"attempt": 1, "executor": "local", "worker_id": "w-7f3a",
                   "started": now - 95, "ended": now - 2, "outcome": "user_error"}])


async def visible_log_lines(page: Any) -> int:
    """Log lines wholly on screen: inside the log's view and inside the window."""
    return int(await page.evaluate("""() => {
        const view = document.querySelector('.log-scroll').getBoundingClientRect();
        return [...document.querySelectorAll('.log-line')].filter((line) => {
            const box = line.getBoundingClientRect();
            return box.top >= view.top && box.bottom <= view.bottom && box.top >= 0
                && box.bottom <= window.innerHeight;
        }).length;
    }"""))


async def test_the_build_page_is_mostly_log_and_first_error_scrolls_to_it(
    tmp_path: Path, browser: Any
) -> None:
    async with running_server(tmp_path) as slipway:
        build_id = await seed_user_error(slipway, 3000, first_error=1200)
        path = f"#/build/team/compiler/{build_id}"
        page = await signed_in_page(browser, slipway, path,
                                    viewport={"width": 1400, "height": 900})
        errors = page_errors(page)
        await page.get_by_role("status").filter(has_text="ended · 3,000 lines").wait_for(
            timeout=WAIT_MS)
        await page.locator(".build-error").wait_for()
        # the log takes most of the window, with the details in a column beside it; the
        # page needs no scrolling
        log = await page.locator(".log-scroll").bounding_box()
        details = await page.get_by_role("complementary", name="Build details").bounding_box()
        assert log and details
        assert log["height"] >= 0.6 * 900, log
        assert log["y"] + log["height"] <= 900
        assert details["x"] >= log["x"] + log["width"]
        assert await visible_log_lines(page) >= 30
        assert await page.evaluate("document.documentElement.scrollHeight") <= 900
        for name in ("Summary", "Phases", "Attempts"):
            assert await page.get_by_role("heading", name=name).is_visible()
        assert "user error" in await page.locator("details[data-section=attempts]").inner_text()

        # it followed the end: the first error, far above, is out of view; the button
        # brings it into view, marked
        marked = page.locator(".log-line.marked")
        first_error = page.locator(".log-line[data-index='1199']")
        assert not (await first_error.count() and await in_view(page, first_error))
        await page.get_by_role("button", name="First error").click()
        await marked.wait_for()
        assert await marked.locator(".ln").inner_text() == "1200"
        assert "unknown type name" in await marked.inner_text()
        assert await in_view(page, marked)
        assert page.url.endswith(f"{path}/L1200")

        # Go to line, likewise
        await page.get_by_label("Go to line").fill("2500")
        await page.keyboard.press("Enter")
        await marked.locator(".ln", has_text="2500").wait_for()
        assert await in_view(page, marked)
        # scrolled away, First error again goes back (the address already names the line
        # once it was used: no new address, the same jump)
        await page.get_by_role("button", name="First error").click()
        await marked.locator(".ln", has_text="1200").wait_for()
        await page.locator(".log-scroll").evaluate("el => { el.scrollTop = 0; }")
        await page.locator(".log-line[data-index='0']").wait_for()
        assert await marked.count() == 0  # far above: not even drawn
        await page.get_by_role("button", name="First error").click()
        await marked.locator(".ln", has_text="1200").wait_for()
        assert await in_view(page, marked)
        await screenshot(page, "build-first-error", tmp_path)

        # a folded section stays folded on the next build page, after a reload too
        await page.locator("details[data-section=attempts] > summary").click()
        # remembered on the section's toggle event, which the browser fires after the click
        await page.wait_for_function(
            "() => JSON.parse(localStorage.getItem('slipway.build.open-sections') || '{}')"
            ".attempts === false", timeout=WAIT_MS)
        await page.reload()
        await page.get_by_role("status").filter(has_text="ended").wait_for(timeout=WAIT_MS)
        assert await page.locator("details[data-section=attempts]").get_attribute(
            "open") is None
        assert await page.locator("details[data-section=summary]").get_attribute(
            "open") == ""
        assert not await page.get_by_text("w-7f3a").is_visible()
        assert errors == []

        # on a small screen the log comes first, the details below it; the jump scrolls
        # the page as well as the log (the log starts low in the window: the line, a third
        # down the log, would be below the window's foot)
        narrow = await signed_in_page(browser, slipway, path,
                                      viewport={"width": 360, "height": 560})
        await narrow.get_by_role("status").filter(has_text="ended").wait_for(timeout=WAIT_MS)
        assert (await narrow.locator(".log-scroll").bounding_box() or {})["y"] > 560 / 2
        await narrow.get_by_role("button", name="First error").click()
        marked = narrow.locator(".log-line.marked")
        await marked.locator(".ln", has_text="1200").wait_for()
        assert await in_view(narrow, marked)


async def test_the_manager_page_puts_build_errors_apart_from_infrastructure_failures(
    tmp_path: Path, browser: Any
) -> None:
    async with running_server(tmp_path) as slipway:
        now = time.time()
        broken = await seed_user_error(slipway, 40, first_error=20)
        flaky = await seed_finished_build(
            slipway, "team", "flaky", [phase_entry(Phase.INTERNAL_ERROR)],
            phase=Phase.INTERNAL_ERROR, retries_remaining=0,
            error="the build worker never registered with the build manager (after 3 attempts)",
            attempts=[
                {"attempt": 1, "executor": "k8s", "started": now - 900, "ended": now - 800,
                 "outcome": "heartbeat_lost"},
                {"attempt": 2, "executor": "local", "started": now - 700, "ended": now - 600,
                 "outcome": "heartbeat_lost"},
                {"attempt": 3, "executor": "local", "started": now - 500, "ended": now - 100,
                 "outcome": "never_registered"}])
        page = await signed_in_page(browser, slipway, "#/manager")
        errors = page_errors(page)
        user = page.get_by_role("region", name="Build errors")
        infrastructure = page.get_by_role("region", name="Infrastructure failures")
        await user.get_by_role("link", name=f"team/compiler {broken[:8]}").wait_for()
        # each in its place, with its count
        assert "Build errors: 1 build, last 24 hours" in await user.inner_text()
        assert "RUN make all: exit status 2" in await user.inner_text()
        assert await user.get_by_text("heartbeat_lost").count() == 0
        assert "Infrastructure failures: 3 attempts" in await infrastructure.inner_text()
        row = infrastructure.locator("tr", has_text="heartbeat_lost")
        assert await row.locator("td[data-label=Count]").inner_text() == "2"
        assert await row.get_by_role("link", name=f"team/flaky {flaky[:8]}").count() == 1
        assert await infrastructure.locator("tr", has_text="never_registered").count() == 1
        assert await infrastructure.get_by_text("team/compiler").count() == 0
        await screenshot(page, "manager", tmp_path)
        # the build error's link opens the build
        await user.get_by_role("link", name=f"team/compiler {broken[:8]}").click()
        await page.locator(".build-error").wait_for()
        assert errors == []


@pytest.mark.podman
async def test_a_running_build_log_arrives_live_then_cancel_shows_cancelled(
    tmp_path: Path, browser: Any, registry: Registry, base_image: str
) -> None:
    async with running_server(tmp_path, **registry_config(registry)) as slipway:
        file_id = await slipway.upload_context({"Dockerfile": (
            f"FROM {base_image}\n"
            "RUN for i in $(seq 1 3000); do echo tick $i; sleep 0.1; done\n")})
        build = await slipway.start_build("team", "ticker", file_id=file_id)
        page = await signed_in_page(browser, slipway, f"#/build/team/ticker/{build['id']}",
                                    viewport={"width": 1400, "height": 900})
        errors = page_errors(page)
        log = page.locator(".log-window")
        await log.get_by_text("tick 3", exact=True).wait_for(timeout=WAIT_MS)
        # the page was loaded once: later lines arrive over the stream while it builds
        await log.get_by_text("tick 12", exact=True).wait_for(timeout=WAIT_MS)
        assert await page.locator("#build-phase").inner_text() == "building"
        attempts = page.locator("table tbody tr", has_text="local")
        assert "running" in await attempts.first.inner_text()

        # scrolling up stops following the end; more lines arrive, the view stays
        await log.get_by_text("tick 40", exact=True).wait_for(timeout=WAIT_MS)  # it scrolls
        scroller = page.locator(".log-scroll")
        follow = page.get_by_role("button", name="Follow the end")
        # as a user scrolls again when lines that arrived in the same frame took the view
        # back to the end (the scroll event comes a frame after the scroll)
        for _ in range(10):
            await scroller.evaluate("el => { el.scrollTop = 0; }")
            try:
                await follow.wait_for(timeout=2000)
                break
            except PlaywrightTimeoutError:
                continue
        await follow.wait_for()
        assert await follow.get_attribute("aria-pressed") == "false"
        await more_lines(page, await log_lines(page) + 20)
        assert await scroller.evaluate("el => el.scrollTop") == 0
        await log.get_by_text("tick 1", exact=True).wait_for()
        # following again: the view goes to the end and stays there as lines arrive
        await follow.click()
        await page.get_by_role("button", name="Following the end").wait_for()
        await more_lines(page, await log_lines(page) + 20)
        assert await scroller.evaluate(
            "el => el.scrollTop + el.clientHeight >= el.scrollHeight - 25")
        await screenshot(page, "build-live", tmp_path)

        await page.get_by_role("button", name="Cancel build").click()
        dialog = page.get_by_role("dialog", name="Cancel this build?")
        await dialog.wait_for()
        await dialog.get_by_role("button", name="Cancel build").click()
        await page.locator("#build-phase", has_text="cancelled").wait_for(timeout=WAIT_MS)
        await log.get_by_text("Build cancelled by user").wait_for()
        await page.get_by_role("status").filter(has_text="ended").wait_for(timeout=WAIT_MS)
        assert await page.get_by_role("button", name="Cancel build").is_hidden()
        final = await slipway.wait_final("team", "ticker", build["id"])
        assert final["phase"] == "cancelled"
        assert errors == []


@pytest.mark.podman
async def test_a_failed_build_shows_its_error_and_the_manager_counts_it(
    tmp_path: Path, browser: Any, registry: Registry, base_image: str
) -> None:
    async with running_server(tmp_path, **registry_config(registry)) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": f"FROM {base_image}\nRUN echo about to fail && exit 7\n"})
        build = await slipway.start_build("team", "broken", file_id=file_id)
        final = await slipway.wait_final("team", "broken", build["id"])
        assert final["phase"] == "error"
        page = await signed_in_page(browser, slipway, f"#/build/team/broken/{build['id']}",
                                    viewport={"width": 1400, "height": 900})
        banner = page.locator(".build-error")
        await banner.wait_for()
        assert await banner.get_attribute("role") == "alert"
        assert final["error"] in await banner.inner_text()
        await page.get_by_role("status").filter(has_text="ended").wait_for(timeout=WAIT_MS)
        error_lines = page.locator(".log-line.log-error")
        assert await error_lines.count() >= 1
        assert "7" in await error_lines.first.inner_text()
        await page.get_by_role("button", name="First error").click()
        marked = page.locator(".log-line.marked.log-error")
        await marked.wait_for()
        line = await marked.locator(".ln").inner_text()
        assert page.url.endswith(f"/L{line}")
        await screenshot(page, "build-failed", tmp_path)

        await page.get_by_role("link", name="Manager").click()
        # the build's own failure, not the service's
        user = page.get_by_role("region", name="Build errors")
        await user.get_by_role("link", name=f"team/broken {build['id'][:8]}").wait_for()
        assert "Build errors: 1 build" in await user.inner_text()
        assert "Infrastructure failures: 0 attempts" in await page.get_by_role(
            "region", name="Infrastructure failures").inner_text()
        executor = page.locator("tr", has_text="local").first
        assert await executor.locator("td[data-label='Of allowed']").inner_text() == "1"


def skopeo_digest(reference: str) -> str:
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
                         check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)["Digest"])


@pytest.mark.podman
async def test_start_a_build_from_the_form_then_build_it_again(
    tmp_path: Path, browser: Any, registry: Registry, base_image: str
) -> None:
    archive = tmp_path / "context.tar.gz"
    archive.write_bytes(tar_gz({"Dockerfile": (
        f"FROM {base_image}\nARG GREETING=hello\nRUN echo \"greeting=$GREETING\"\n")}))
    # no layer cache: "build again" runs the RUN step anew, and its output shows that the
    # build argument went with it
    uncached = {"BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [
        {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman", "REGISTRY_CACHE": False}]}]}
    async with running_server(tmp_path, **registry_config(registry), **uncached) as slipway:
        page = await signed_in_page(browser, slipway, "#/new")
        errors = page_errors(page)
        await page.get_by_role("heading", name="Start a build").wait_for()
        # a refusal by the API is shown as the API worded it
        await page.get_by_label("Namespace").fill("team")
        await page.get_by_label("Repository").fill("hello")
        await page.get_by_label("Context archive").set_input_files(str(archive))
        await page.get_by_label("Tags").fill("v1 -bad")
        await page.get_by_role("button", name="Start the build").click()
        alert = page.get_by_role("alert")
        await alert.wait_for(timeout=WAIT_MS)
        assert "'-bad' is not a valid tag" in await alert.inner_text()

        await page.get_by_label("Tags").fill("v1, latest")
        await page.get_by_label("Build arguments").fill("GREETING=hola\n")
        await screenshot(page, "new-build", tmp_path)
        await page.get_by_role("button", name="Start the build").click()
        await page.wait_for_url("**/#/build/team/hello/*", timeout=WAIT_MS)
        first_id = page.url.rsplit("/", 1)[1]
        await page.locator("#build-phase", has_text="complete").wait_for(timeout=WAIT_MS)
        await page.locator(".log-window").get_by_text("greeting=hola").first.wait_for()
        digest = skopeo_digest(f"{registry.host}/team/hello:v1")
        await page.locator("code.digest", has_text=digest).wait_for()
        assert skopeo_digest(f"{registry.host}/team/hello:latest") == digest
        await screenshot(page, "build-complete", tmp_path)

        await page.get_by_role("button", name="Build again").click()
        await page.wait_for_function("id => !location.hash.includes(id)", arg=first_id,
                                     timeout=WAIT_MS)
        second_id = page.url.rsplit("/", 1)[1]
        await page.locator("#build-phase", has_text="complete").wait_for(timeout=WAIT_MS)
        # the build arguments went with it, though the API never showed them
        await page.locator(".log-window").get_by_text("greeting=hola").first.wait_for()

        await page.get_by_role("link", name="hello").click()
        rows = page.locator("tbody tr[data-build]")
        await rows.nth(1).wait_for()
        assert await rows.count() == 2
        assert await rows.first.get_attribute("data-build") == second_id
        await page.get_by_text("Failed", exact=True).click()
        await page.get_by_text("No builds in these phases.").wait_for()
        assert page.url.endswith("?phase=failed")
        await page.get_by_text("Complete", exact=True).click()
        await rows.nth(1).wait_for()
        await screenshot(page, "repository", tmp_path)
        await page.get_by_role("link", name="Repositories").first.click()
        await page.locator("tr[data-repository='team/hello']").wait_for()
        await screenshot(page, "repositories", tmp_path)
        # the only console error is the refused request (the -bad tag)
        assert [e for e in errors if "status of 400" not in e] == []


async def test_narrow_screen_has_no_sideways_scrolling(tmp_path: Path, browser: Any) -> None:
    async with running_server(tmp_path) as slipway:
        build_id, _ = await seed_long_build(slipway, 200)
        for path in ("#/", "#/repo/big/log", f"#/build/big/log/{build_id}", "#/new",
                     "#/manager"):
            page = await signed_in_page(browser, slipway, path,
                                        viewport={"width": 360, "height": 740})
            await page.locator("main h1").wait_for()
            await page.wait_for_load_state("networkidle")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            assert await page.get_by_role("link", name="Manager").is_visible()
            if path.startswith("#/build"):
                await page.get_by_role("status").filter(has_text="ended").wait_for()
                await screenshot(page, "narrow-build", tmp_path)


@pytest.mark.podman
async def test_start_a_build_from_an_archive_url(
    tmp_path: Path, browser: Any, registry: Registry, base_image: str
) -> None:
    package = tar_gz({"sub/Dockerfile": f"FROM {base_image}\nRUN echo from-a-url\n"})
    with serve_files({"/ctx.tar.gz": (package, "application/gzip")}) as files:
        async with running_server(tmp_path, **registry_config(registry)) as slipway:
            page = await signed_in_page(browser, slipway, "#/new?repository=team/fetched")
            assert await page.get_by_label("Namespace").input_value() == "team"
            assert await page.get_by_label("Repository").input_value() == "fetched"
            await page.get_by_label("Give an archive URL").check()
            await page.get_by_role("textbox", name="Archive URL").fill(f"{files}/ctx.tar.gz")
            await page.get_by_label("Dockerfile path").fill("sub/Dockerfile")
            await page.get_by_role("button", name="Start the build").click()
            await page.wait_for_url("**/#/build/team/fetched/*", timeout=WAIT_MS)
            await page.locator("#build-phase", has_text="complete").wait_for(timeout=WAIT_MS)
            await page.locator(".log-window").get_by_text("from-a-url").first.wait_for()
            summary = await page.locator("dl.summary").inner_text()
            assert f"{files}/ctx.tar.gz" in summary
            assert skopeo_digest(f"{registry.host}/team/fetched:latest")


async def test_keyboard_focus_stays_on_its_link_when_a_list_refreshes(
    tmp_path: Path, browser: Any
) -> None:
    async with running_server(tmp_path) as slipway:
        await seed_long_build(slipway, 10)
        page = await signed_in_page(browser, slipway, "#/")
        link = page.get_by_role("link", name="log", exact=True)
        await link.wait_for()
        for _ in range(30):  # Tab through the page to the repository's link
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "log":
                break
        assert await page.evaluate("document.activeElement.getAttribute('href')") == (
            "#/repo/big/log")
        before = await page.locator(".updated").inner_text()
        await page.wait_for_function(
            "text => document.querySelector('.updated').textContent !== text", arg=before,
            timeout=WAIT_MS)
        assert await page.evaluate("document.activeElement.getAttribute('href')") == (
            "#/repo/big/log")
        await page.keyboard.press("Enter")
        await page.get_by_role("heading", name="big/log").wait_for()


async def test_the_embedded_defaults_first_start_prints_a_link_that_signs_in(
    tmp_path: Path, browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import os
    import signal

    from support.registry import free_port

    from slipway.cli.serve_cmd import _serve
    from slipway.config.loader import parse_config

    port = free_port()
    config = parse_config({"DATA_DIR": str(tmp_path / "data"),
                           "API_LISTEN_ADDRESS": f"127.0.0.1:{port}",
                           "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}).config
    serving = asyncio.create_task(_serve(config, embedded=True))
    loop = asyncio.get_running_loop()
    try:
        printed = ""
        while "#token=" not in printed:
            assert not serving.done(), printed
            await asyncio.sleep(0.1)
            printed += capsys.readouterr().err
        assert f"web UI: http://127.0.0.1:{port}/" in printed
        link = printed.split("sign in to the web UI as admin: ")[1].split()[0]
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        assert link == f"http://127.0.0.1:{port}/#token={token}"
        page = await (await browser.new_context()).new_page()
        await page.goto(link)
        await page.get_by_role("heading", name="Repositories").wait_for()
        assert "token" not in page.url
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # what stops `slipway serve`
        await asyncio.wait_for(serving, 60)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def test_a_configured_servers_start_says_where_the_token_is_not_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import os
    import signal

    from support.registry import free_port

    from slipway.api.ui import sign_in_hint
    from slipway.cli.serve_cmd import _serve
    from slipway.config.loader import parse_config

    config = parse_config({"DATA_DIR": str(tmp_path / "data"),
                           "API_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
                           "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}).config
    token_file = tmp_path / "data" / "admin-token"
    serving = asyncio.create_task(_serve(config, embedded=False))
    loop = asyncio.get_running_loop()
    try:
        printed = ""
        while "sign in to the web UI" not in printed:
            assert not serving.done(), printed
            await asyncio.sleep(0.1)
            printed += capsys.readouterr().err
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # what stops `slipway serve`
        await asyncio.wait_for(serving, 60)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    printed += capsys.readouterr().err
    token = token_file.read_text().strip()
    assert f"sign in to the web UI with an API token: the admin token is in {token_file}" in (
        printed.replace("\n", " "))
    assert token not in printed and "#token=" not in printed
    # the file gone (moved to a vault): the start says so, still without a token
    token_file.unlink()
    assert f"no longer in {token_file}" in sign_in_hint(token_file)
