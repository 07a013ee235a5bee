"""The build page's trace (docs/traces.md) in a real headless Chromium, for a real build
(podman, the layer cache on, a real registry): every stage a row, the worker's marked,
and a screenshot for docs/web-ui.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium_available
from support.registry import Registry
from support.server import running_server
from test_ui import WAIT_MS, browser, cli_home, page_errors, registry_config, signed_in_page

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

__all__ = ["browser", "cli_home"]  # the fixtures, used by name

SPANS = ["build", "admission", "queue wait", "claim", "executor start", "worker start",
         "registration", "worker", "worker process start", "register", "context fetch",
         "context unpack", "base pull", "cache probe", "build steps", "step 1/2",
         "step 2/2", "cache lookup", "push", "completion"]


async def test_the_build_page_draws_the_builds_trace(
    tmp_path: Path, browser: Any, registry: Registry, base_image: str
) -> None:
    async with running_server(tmp_path, **registry_config(registry)) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": f"FROM {base_image}\nRUN echo traced in the browser\n"})
        # twice: the first build fills the registry cache, the second looks its step up
        for _ in range(2):
            build = await slipway.start_build("team", "traced", file_id=file_id)
            final = await slipway.wait_final("team", "traced", build["id"])
            assert final["phase"] == "complete"
        page = await signed_in_page(browser, slipway, f"#/build/team/traced/{build['id']}",
                                    viewport={"width": 1400, "height": 1300})
        errors = page_errors(page)
        # the other side sections folded: the trace in view
        await page.evaluate("localStorage.setItem('slipway.build.open-sections', JSON.stringify("
                            "{summary: false, phases: false, attempts: false}))")
        await page.reload()
        chart = page.get_by_role("list", name="Spans of the build's trace")
        await chart.wait_for(timeout=WAIT_MS)
        await page.locator("#build-trace li[data-name='completion']").wait_for(timeout=WAIT_MS)
        names = await chart.locator("li .span-name").all_inner_texts()
        assert set(SPANS) <= set(names), sorted(set(SPANS) - set(names))
        assert names[0] == "build"  # the root first, its children under it
        worker_rows = await page.locator("#build-trace li.worker .span-name").all_inner_texts()
        assert "worker" in worker_rows and "executor start" not in worker_rows
        wait = page.locator("#build-trace li[data-name='queue wait']")
        assert "waited for: next" in await wait.inner_text()
        if os.environ.get("SLIPWAY_UI_SCREENSHOTS"):
            folder = Path(os.environ["SLIPWAY_UI_SCREENSHOTS"])
            await page.locator(".build").screenshot(path=str(folder / "build-trace.png"))
        assert errors == []
