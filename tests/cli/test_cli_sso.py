"""`slipway login URL --sso` with a real OpenID provider (npm oidc-provider): the CLI
waits on a loopback port, the browser (a real Chromium) signs in at the provider, the
CLI saves a token of the user's groups' roles; the sign-in expires; `slipway logout`
revokes it on the server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from cli_process import CliProcess
from support.api_app import LiveApi
from support.browser import chromium, chromium_available
from support.oidc_provider import oidc_provider

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

ACCOUNTS = {"dana": {"email": "dana@example.com", "groups": ["web-devs"]}}
GROUP_ROLES = {"web-devs": {"web": "write"}}
LOGIN_URL = re.compile(r"Sign in with your browser: (\S+)")


async def browser_sign_in(url: str, login: str) -> None:
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(url)
        await page.locator("input[name=login]").fill(login)
        await page.locator("input[name=password]").fill("any password")
        await page.locator("button[type=submit]").click()
        consent = page.locator("button[type=submit]", has_text="Continue")
        await consent.wait_for()
        await consent.click()
        await page.get_by_role("heading", name="Signed in").wait_for()
        assert "slw_" not in await page.content()


def cli_login(tmp_path: Path, live: LiveApi, name: str) -> CliProcess:
    proc = CliProcess(tmp_path, ["login", live.url, "--sso", "--no-browser"], {}, name)
    proc.wait_for("Sign in with your browser:", stream="stderr")
    match = LOGIN_URL.search(proc.stderr)
    assert match is not None
    asyncio.run(browser_sign_in(match.group(1), "dana"))
    assert proc.wait() == 0, proc.stderr
    return proc


def token_of_context(tmp_path: Path) -> str:
    saved = json.loads((tmp_path / "xdg" / "slipway" / "cli.json").read_text())
    [context] = saved["contexts"].values() if isinstance(saved["contexts"], dict) \
        else saved["contexts"]
    return str(context["token"])


def test_cli_single_sign_on_through_a_loopback_then_expiry_and_logout(tmp_path: Path) -> None:
    live = LiveApi(tmp_path / "server", SERVER_HOSTNAME="127.0.0.1:5000")
    with oidc_provider([f"{live.url}/auth/oidc/callback"], ACCOUNTS) as provider:
        live._overrides["ACCESS"] = provider.access_config(GROUP_ROLES,
                                                           session_lifetime="10s")
        live.start()
        try:
            proc = cli_login(tmp_path, live, "login1")
            assert "Logged in to" in proc.stdout and "'dana@example.com'" in proc.stdout
            assert "write on web" in proc.stdout
            token = token_of_context(tmp_path)
            listing = CliProcess(tmp_path, ["token", "list", "--json"], {}, "list")
            assert listing.wait() == 0, listing.stderr
            [session] = [t for t in json.loads(listing.stdout)
                         if t["name"] == "dana@example.com"]
            assert session["scopes"] == {"web": "write"}
            # the sign-in expires: the CLI is then told to sign in again
            time.sleep(max(0.0, session["expires"] - time.time()))
            expired = CliProcess(tmp_path, ["token", "list"], {}, "expired")
            assert expired.wait() == 1
            assert "the API token is not valid (HTTP 401); sign in again" in expired.stderr

            cli_login(tmp_path, live, "login2")
            token = token_of_context(tmp_path)
            assert httpx.get(f"{live.url}/api/v1/user/",
                             headers={"Authorization": f"Bearer {token}"}).status_code == 200
            out = CliProcess(tmp_path, ["logout"], {}, "logout")
            assert out.wait() == 0, out.stderr
            assert f"Signed out of {live.url}" in out.stdout
            assert httpx.get(f"{live.url}/api/v1/user/",
                             headers={"Authorization": f"Bearer {token}"}).status_code == 401
        finally:
            live.stop()
