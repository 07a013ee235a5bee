"""The web UI's log view at scale: the time to fetch a finished build's 100,000-line log
through the SSE stream from entry 0 to its `end` event, and through `GET .../logs`
paging while the API pages; with --browser, the build page in headless Chromium: when
its first screen of lines is drawn to stay, when the whole log is there, and how smooth
its frames are while it loads and while the log is scrolled.

python -m benchmarks.ui_log [--lines N] [--db-uri URI] [--browser]

One slipway (SlipwayServer, the embedded default unless --db-uri) runs in this process
beside the client: the figures are wall-clock seconds of both on this machine. Prints one
JSON object. `benchmarks.run`'s e2e section runs it 3 times with the browser
(`e2e.ui_log`: issue 30's target, the first screen within 1 s), not in the smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import free_port, rounded
from slipway.config.loader import parse_config
from slipway.domain.phases import Phase
from slipway.manager.admission import store_new_build
from slipway.server import SlipwayServer
from slipway.store.records import LogEntry, NewBuild


async def _seed(server: SlipwayServer, lines: int) -> str:
    """A finished build with `lines` log entries that no manager picks up."""
    store = server.store
    record = await store_new_build(store, NewBuild(
        namespace="big", repository="log", tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz"))
    async with store.db.write() as conn:
        await store.queue.remove_for_build(conn, record.id)
    have = await store.logs.count(record.id)
    entries = [LogEntry(f"output line {i}: compiling module_{i:06d}.c -O2 -Wall")
               for i in range(have, lines)]
    for i in range(0, len(entries), 10_000):
        await store.logs.append(record.id, entries[i:i + 10_000])
    async with store.db.write() as conn:
        await store.builds.update(conn, record.id, phase=Phase.COMPLETE, completed=time.time())
    return record.id


async def _stream(client: httpx.AsyncClient, path: str) -> tuple[int, int]:
    """Read the SSE stream to its end event as the page does; (entries, bytes)."""
    entries, size, buffer = 0, 0, ""
    async with client.stream("GET", f"{path}/logs/stream", params={"start": 0},
                             headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        async for text in response.aiter_text():
            size += len(text)
            buffer += text
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                if block.startswith("event: log"):
                    json.loads(block.split("\ndata: ", 1)[1])
                    entries += 1
                elif block.startswith("event: end"):
                    return entries, size
    raise RuntimeError("the stream closed without an end event")


async def _pages(client: httpx.AsyncClient, path: str) -> tuple[int, int, int]:
    """GET .../logs from 0 while the API pages; (entries, pages, bytes)."""
    got, pages, size, start = 0, 0, 0, 0
    while True:
        r = await client.get(f"{path}/logs", params={"start": start})
        r.raise_for_status()
        body = r.json()
        n = len(body["logs"])
        got, pages, size, start = got + n, pages + 1, size + len(r.content), start + n
        if n == 0 or start >= int(body["total"]):
            return got, pages, size


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"]
# steps of the scroll through the whole log, one per frame
SCROLL_STEPS = 300
# frames of the wheel-like scroll, and its pixels a frame (3 lines)
WHEEL_STEPS, WHEEL_PX = 200, 60

# Installed in the page before its own scripts, so the same measure applies to any
# revision of the UI (the before and after of a change): every frame's gap, the long
# tasks, and what the log shows a user (the lines wholly in the log's box, by number and
# text; a line not yet loaded, `.log-pending`, is not one a user can read), each time
# the DOM or the scroll position changes.
_PROBE = """(() => {
  const probe = { screens: [], longtasks: [], frames: [], sampling: true };
  window.__uilog = probe;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) probe.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { probe.noLongtasks = String(e); }
  let last = performance.now();
  const tick = (now) => { probe.frames.push([now, now - last]); last = now;
                          requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  // reading the lines' boxes lays the page out: only when the log itself changed (the
  // page lays it out for that frame anyway), not on every change of the page
  const look = (records) => {
    if (!probe.sampling) return;
    const scroller = document.querySelector(".log-scroll");
    if (!scroller) return;
    if (Array.isArray(records) && !records.some((r) => scroller.contains(r.target))) return;
    if (records && records.target && records.target !== scroller) return;
    const view = scroller.getBoundingClientRect();
    const shown = [];
    for (const line of scroller.querySelectorAll(".log-line:not(.log-pending)")) {
      const box = line.getBoundingClientRect();
      if (box.height > 0 && box.top >= view.top && box.bottom <= view.bottom)
        shown.push(line.innerText);
    }
    const key = shown.join("\\n");
    const prev = probe.screens[probe.screens.length - 1];
    if (!prev || prev[1] !== key) probe.screens.push([performance.now(), key, shown.length]);
  };
  new MutationObserver(look).observe(document, { childList: true, subtree: true,
                                                 characterData: true });
  addEventListener("scroll", look, { capture: true, passive: true });
})();"""

# a scroll from the top of the log to its end in `steps` frames (as dragging the scroll
# bar: a new screen of lines every frame), or by `by` pixels a frame from the middle (as a
# mouse wheel: a few new lines a frame); each frame's gap
_SCROLL = """async ([steps, by]) => {
  const el = document.querySelector(".log-scroll");
  const from = performance.now();
  const gaps = [];
  const start = by ? Math.floor(el.scrollHeight / 2) : 0;
  el.scrollTop = start;
  await new Promise((resolve) => requestAnimationFrame(resolve));
  let last = performance.now();
  for (let i = 1; i <= steps; i++) {
    el.scrollTop = by ? start + by * i : (el.scrollHeight - el.clientHeight) * i / steps;
    const now = await new Promise((resolve) => requestAnimationFrame(resolve));
    gaps.push(now - last);
    last = now;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  const tasks = window.__uilog.longtasks.filter(([at]) => at >= from);
  return { gaps, longtasks: tasks.length, drawn: document.querySelectorAll(".log-line").length };
}"""


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def _browser_open(base_url: str, token: str, build_id: str,
                        lines: int) -> dict[str, Any]:
    """The build page opened afresh in headless Chromium (Playwright, Debian's chromium),
    as from a link: what a user sees when, until the page says the whole log is there,
    then a scroll through the whole log."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"{base_url}/")
            await page.evaluate("t => sessionStorage.setItem('slipway.token', t)", token)
            await page.goto("about:blank")
            await page.add_init_script(_PROBE)
            t0 = time.perf_counter()
            await page.goto(f"{base_url}/#/build/big/log/{build_id}")
            await page.get_by_role("status").filter(
                has_text=f"ended · {lines:,} lines").wait_for(timeout=120_000)
            open_s = time.perf_counter() - t0
            whole_ms = await page.evaluate("performance.now()")
            await page.wait_for_timeout(500)  # nothing more should change on screen
            probe = await page.evaluate("() => { window.__uilog.sampling = false; "
                                        "return window.__uilog; }")
            scroll = await page.evaluate(_SCROLL, [SCROLL_STEPS, 0])
            wheel = await page.evaluate(_SCROLL, [WHEEL_STEPS, WHEEL_PX])
        finally:
            await browser.close()
    screens: list[list[Any]] = probe["screens"]
    # the first screen: from when the log showed what it shows with the whole log there
    # (its end: the page follows the end), and kept showing it
    settled = None
    if screens and screens[-1][2] > 0:
        final = screens[-1][1]
        settled = screens[-1][0]
        for at, key, _ in reversed(screens):
            if key != final:
                break
            settled = at
    first_lines = next((at for at, _, n in screens if n > 0), None)
    loading = [d for at, d in probe["longtasks"] if at <= whole_ms]
    frames = [gap for at, gap in probe["frames"][1:] if at <= whole_ms]
    return {
        "browser_open_s": open_s,
        "browser_first_lines_s": None if first_lines is None else first_lines / 1000,
        "browser_first_screen_s": None if settled is None else settled / 1000,
        "browser_load_longtasks": len(loading),
        "browser_load_longtask_max_ms": max(loading, default=0.0),
        "browser_load_frame_p95_ms": _p95(frames),
        "browser_load_frame_max_ms": max(frames, default=None),
        "browser_scroll_frame_p95_ms": _p95(scroll["gaps"]),
        "browser_scroll_frame_max_ms": max(scroll["gaps"], default=None),
        "browser_scroll_longtasks": scroll["longtasks"],
        "browser_scroll_drawn_lines": scroll["drawn"],
        "browser_wheel_frame_p95_ms": _p95(wheel["gaps"]),
        "browser_wheel_frame_max_ms": max(wheel["gaps"], default=None),
        "browser_wheel_longtasks": wheel["longtasks"],
        "browser_probe_note": probe.get("noLongtasks"),
    }


async def run(lines: int, db_uri: str | None, work: Path,
              browser: bool = False) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "DATA_DIR": str(work / "data"),
        "API_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    if db_uri:
        raw["DB_URI"] = db_uri
    server = SlipwayServer(parse_config(raw).config)
    await server.start()
    try:
        token = server.admin_token
        if token is None:
            from slipway.api.auth import create_token

            token = await create_token(server.store, "bench", {"*": "admin"})
        build_id = await _seed(server, lines)
        path = f"/api/v1/repository/big/log/build/{build_id}"
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.api_port}", timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            t0 = time.perf_counter()
            streamed, stream_bytes = await _stream(client, path)
            stream_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            paged, pages, page_bytes = await _pages(client, path)
            pages_s = time.perf_counter() - t1
        seen = (await _browser_open(f"http://127.0.0.1:{server.api_port}", token,
                                    build_id, lines) if browser else {})
    finally:
        await server.stop()
    return {
        "lines": lines,
        "stream_entries": streamed, "stream_bytes": stream_bytes,
        "stream_s": rounded(stream_s, 3),
        "get_entries": paged, "get_pages": pages, "get_bytes": page_bytes,
        "get_s": rounded(pages_s, 3),
        **{key: rounded(value, 3) if isinstance(value, float) else value
           for key, value in seen.items()},
    }


async def repeated(work: Path, runs: int, lines: int = 100_000) -> dict[str, Any]:
    """`runs` runs with the browser, each on a fresh embedded default: the median of each
    figure, and each figure of every run (`runs_of`)."""
    results = []
    for i in range(runs):
        results.append(await run(lines, None, work / f"run{i}", browser=True))
    # a figure a run could not take (None) is left out of its median, not of the table
    numeric = list(dict.fromkeys(
        key for result in results for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)))
    medians = {}
    for key in numeric:
        values = [r[key] for r in results if isinstance(r.get(key), int | float)]
        medians[key] = rounded(statistics.median(values), 3) if values else None
    return {"runs": runs, **medians,
            "runs_of": {key: [r.get(key) for r in results] for key in numeric}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--db-uri", default=None, help="a database for slipway (default: "
                        "the embedded default's)")
    parser.add_argument("--browser", action="store_true", help="also time the build page "
                        "in headless Chromium until the whole log is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slipway-ui-log-") as work:
        result = asyncio.run(run(args.lines, args.db_uri, Path(work), args.browser))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
