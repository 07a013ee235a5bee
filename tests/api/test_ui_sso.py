"""Single sign-on in the web UI with a real OpenID provider (npm oidc-provider) and a
real Chromium: the UI's button leads to the provider's login, the provider's groups
become namespace roles, the sign-in expires, sign-out revokes it on the server; a user
in no mapped group is refused, saying why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import chromium, chromium_available, screenshot
from support.oidc_provider import CLIENT_SECRET, oidc_provider
from support.server import free_port, running_server

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

ACCOUNTS = {
    "alice": {"email": "alice@example.com", "groups": ["web-devs", "staff"]},
    "bob": {"email": "bob@example.com", "groups": ["platform"]},
}
GROUP_ROLES = {"web-devs": {"web": "write"}, "staff": {"docs": "read"},
               "platform": {"*": "admin"}}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def sign_in_with_provider(page: Any, login: str) -> None:
    """The provider's own pages: its login form (any password), then its consent."""
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any password")
    await page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text="Continue")
    await consent.wait_for()
    await consent.click()


async def test_ui_single_sign_on_maps_groups_expires_and_signs_out(
        tmp_path: Path, browser: Any) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with oidc_provider([f"{base}/auth/oidc/callback"], ACCOUNTS) as provider:
        async with running_server(
                tmp_path, API_LISTEN_ADDRESS=f"127.0.0.1:{port}", PUBLIC_URL=base,
                ACCESS=provider.access_config(GROUP_ROLES, session_lifetime="15s")) as slipway:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/")
            button = page.get_by_role("link", name="Sign in with single sign-on")
            await button.wait_for()
            await screenshot(page, "sign-in-sso", tmp_path)
            await button.click()
            await page.wait_for_url(f"{provider.issuer}/**")
            await sign_in_with_provider(page, "alice")
            await page.get_by_role("heading", name="Repositories").wait_for()
            assert page.url == f"{base}/#/"  # the token left the address bar
            who = page.locator("#whoami")
            assert await who.inner_text() == "Signed in as alice@example.com"
            # the groups' roles: write on web, read on docs, nothing else
            assert await who.get_attribute("title") == "write on web, read on docs"
            token = await page.evaluate("sessionStorage.getItem('slipway.token')")
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=auth) as http:
                started = await http.post("/api/v1/repository/web/app/build/",
                                          json={"archive_url": "https://example.com/a.tgz"})
                assert started.status_code == 201, started.text
                assert started.json()["manual_user"] == "alice@example.com"
                refused = await http.post("/api/v1/repository/other/app/build/",
                                          json={"archive_url": "https://example.com/a.tgz"})
                assert refused.status_code == 403
                # the sign-in expires: the same token is refused after SESSION_LIFETIME
                me = (await http.get("/api/v1/slipway/tokens/")).json()["tokens"]
                [session] = [t for t in me if t["name"] == "alice@example.com"]
                assert session["created_by"] == "(single sign-on)"
                await asyncio.sleep(max(0.0, session["expires"] - time.time()))
                assert (await http.get("/api/v1/user/")).status_code == 401
            # the open page signs itself out at its next refresh (every 5 s); a reload
            # here raced that refresh, which had already forgotten the token
            alert = page.get_by_role("alert")
            await alert.wait_for()
            assert await alert.inner_text() == (
                "Signed out: the API token is not valid; sign in again")
            await page.get_by_role("heading", name="Sign in to slipway").wait_for()

            # bob signs in again (the provider remembers no one here: a new context),
            # then signs out: his token is revoked on the server, not only forgotten
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/")
            await page.get_by_role("link", name="Sign in with single sign-on").click()
            await sign_in_with_provider(page, "bob")
            await page.get_by_role("heading", name="Repositories").wait_for()
            assert await page.locator("#whoami").get_attribute("title") == (
                "admin on all namespaces")
            token = await page.evaluate("sessionStorage.getItem('slipway.token')")
            await page.get_by_role("button", name="Sign out").click()
            await page.get_by_role("heading", name="Sign in to slipway").wait_for()
            async with httpx.AsyncClient(base_url=base) as http:
                for _ in range(100):  # the sign-out's request, sent as the page changed
                    r = await http.get("/api/v1/user/",
                                       headers={"Authorization": f"Bearer {token}"})
                    if r.status_code == 401:
                        break
                    await asyncio.sleep(0.1)
                assert r.status_code == 401

            # carol is in no mapped group: refused, saying why
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/auth/oidc/login")
            await sign_in_with_provider(page, "carol")
            alert = page.get_by_role("alert")
            await alert.wait_for()
            assert "carol@example.com is in no group that has a role" in (
                await alert.inner_text())
            audit = (await slipway.api.get("/api/v1/slipway/audit/")).json()["entries"]
    actions = [(e["actor"], e["action"]) for e in audit]
    assert actions == [
        ("alice@example.com", "auth.sign_in"),
        ("alice@example.com", "build.start"),
        ("(unknown)", "auth.failed"),  # the expired token's refusal
        ("(unknown)", "auth.failed"),  # the page's reload with it
        ("bob@example.com", "auth.sign_in"),
        ("bob@example.com", "auth.sign_out"),
        ("(unknown)", "auth.failed"),  # the revoked token, asked above
        ("carol@example.com", "auth.failed"),
    ]
    assert audit[0]["details"]["groups"] == ["web-devs", "staff"]
    assert audit[0]["details"]["scopes"] == {"web": "write", "docs": "read"}
    assert CLIENT_SECRET not in str(audit) and "slw_" not in str(audit)
