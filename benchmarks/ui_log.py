"""The web UI's log view at scale: the time to fetch a finished build's 100,000-line log
as the build page does (the SSE stream from entry 0 to its `end` event), and through
`GET .../logs` paging while the API pages.

python -m benchmarks.ui_log [--lines N] [--db-uri URI] [--browser]

One slipway (SlipwayServer, the embedded default unless --db-uri) runs in this process
beside the client: the figures are wall-clock seconds of both on this machine. Prints one
JSON object. Not part of `benchmarks.run` (it is about the UI, not a target of
docs/architecture.md); results are noted in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def _browser_open(base_url: str, token: str, build_id: str, lines: int) -> float:
    """Seconds from opening the build page in headless Chromium (Playwright, Debian's
    chromium) until the page says the whole log is there."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{base_url}/")
            await page.evaluate("t => sessionStorage.setItem('slipway.token', t)", token)
            t0 = time.perf_counter()
            await page.goto(f"{base_url}/#/build/big/log/{build_id}")
            await page.get_by_role("status").filter(
                has_text=f"ended · {lines:,} lines").wait_for(timeout=120_000)
            return time.perf_counter() - t0
        finally:
            await browser.close()


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
        browser_s = (await _browser_open(f"http://127.0.0.1:{server.api_port}", token,
                                         build_id, lines) if browser else None)
    finally:
        await server.stop()
    return {
        "lines": lines,
        "stream_entries": streamed, "stream_bytes": stream_bytes,
        "stream_s": rounded(stream_s, 3),
        "get_entries": paged, "get_pages": pages, "get_bytes": page_bytes,
        "get_s": rounded(pages_s, 3),
        "browser_open_s": rounded(browser_s, 3),
    }


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
