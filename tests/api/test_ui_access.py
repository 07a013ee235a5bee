"""The web UI's Tokens and Audit pages in a real Chromium against a real slipway: a
token made (shown once, then listed without it), used, revoked; the audit log filtered
and exported as JSON Lines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import chromium, chromium_available, screenshot
from support.server import running_server

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def test_tokens_and_audit_pages(tmp_path: Path, browser: Any) -> None:
    async with running_server(tmp_path) as slipway:
        context = await browser.new_context(accept_downloads=True,
                                            viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        await page.goto(f"{slipway.base_url}/")
        await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                            slipway.server.admin_token)
        await page.goto(f"{slipway.base_url}/#/tokens")
        await page.get_by_role("heading", name="API tokens").wait_for()
        await page.get_by_label("Name").fill("ci-web")
        await page.get_by_label("Scopes").fill("team=write, docs=read")
        await page.get_by_label("Expires after").select_option("90d")
        await page.get_by_role("button", name="Create token").click()
        shown = page.get_by_label("The new token")
        await shown.wait_for()
        token = await shown.input_value()
        assert token.startswith("slw_")
        row = page.locator("tr", has_text="ci-web")
        await row.wait_for()
        assert "team: write" in await row.inner_text()
        listed = await row.inner_text()
        assert "in 90d 0h" in listed or "in 89d 23h" in listed  # 90 days to come
        assert token not in await page.locator("table").inner_text()
        await screenshot(page, "tokens", tmp_path)
        # the token works until it is revoked here
        async with httpx.AsyncClient(base_url=slipway.base_url,
                                     headers={"Authorization": f"Bearer {token}"}) as ci:
            assert (await ci.get("/api/v1/user/")).status_code == 200
            await page.get_by_role("button", name="Revoke ci-web").click()
            await page.locator("tr", has_text="ci-web").get_by_text("revoked").wait_for()
            assert (await ci.get("/api/v1/user/")).status_code == 401

        # a wrong scope is refused in the page, saying what is wrong, and nothing is made
        await page.get_by_label("Name").fill("x")
        await page.get_by_label("Scopes").fill("team:write")
        await page.get_by_role("button", name="Create token").click()
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "is not NAMESPACE=ROLE" in await alert.inner_text()

        await page.goto(f"{slipway.base_url}/#/audit")
        await page.get_by_role("heading", name="Audit log").wait_for()
        await page.locator("table.audit").wait_for()
        text = await page.locator("table.audit").inner_text()
        assert "token.create" in text and "token.revoke" in text and "auth.failed" in text
        await screenshot(page, "audit", tmp_path)
        await page.get_by_label("Action").select_option("token.revoke")
        await page.get_by_role("button", name="Filter").click()
        await page.wait_for_function(
            "() => document.querySelectorAll('table.audit tbody tr').length === 1")
        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Export JSON Lines").click()
        download = await download_info.value
        lines = Path(await download.path()).read_text().splitlines()
        entries = [json.loads(line) for line in lines]
        assert [(e["actor"], e["action"]) for e in entries] == [("admin", "token.revoke")]
        assert token not in "\n".join(lines)
