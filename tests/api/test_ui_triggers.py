"""The repository page's build triggers in a real headless Chromium against a real
slipway: a trigger created from the form (its webhook secret shown once), GitHub's own
deliveries (a ping, a push the filters rule out, a forged one) shown with their reasons,
the trigger edited and disabled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import chromium, chromium_available, screenshot
from support.forge import github_delivery, github_example
from support.server import running_server

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

TOKEN = "ghp_cloneTokenNeverShown0123456789"


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def test_triggers_on_the_repository_page(tmp_path: Path, browser: Any) -> None:
    async with running_server(tmp_path) as slipway:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})
                      ).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{slipway.base_url}/")
        await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                            slipway.server.admin_token)
        await page.goto(f"{slipway.base_url}/#/repo/acme/web")
        await page.get_by_role("heading", name="Build triggers").wait_for()
        await page.get_by_text("This repository has no build triggers.").wait_for()

        await page.get_by_role("button", name="New trigger").click()
        form = page.get_by_role("form", name="New trigger")
        await form.get_by_label("Name").fill("web")
        await form.get_by_label("Git repository").fill("https://github.com/acme/web.git")
        await form.get_by_label("Branches").fill("main, release-*")
        await form.get_by_label("Paths").fill("src/**")
        await form.get_by_label("Clone token (HTTPS)").fill(TOKEN)
        await form.get_by_role("button", name="Create the trigger").click()
        secret_el = page.locator(".webhook-secret")
        await secret_el.wait_for()
        secret = await secret_el.inner_text()
        card = page.locator("article.trigger")
        await card.wait_for()
        assert "main, release-*" in await card.inner_text()
        assert "token, webhook_secret" in await card.inner_text()
        webhook = await card.locator("code").first.inner_text()
        assert webhook.startswith(f"{slipway.base_url}/api/v1/webhooks/")

        # GitHub's deliveries: the ping, a push to master (not a followed branch), a
        # forged one; none builds, each shows why
        async with httpx.AsyncClient(timeout=30) as forge:
            ping = github_example("ping")
            assert (await forge.post(webhook, content=(d := github_delivery(
                "ping", ping, secret))[0], headers=d[1])).status_code == 200
            push = github_example("push", ref="refs/heads/master", deleted=False)
            body, headers = github_delivery("push", push, secret)
            assert (await forge.post(webhook, content=body, headers=headers)).status_code == 202
            body, headers = github_delivery("push", push, "forged")
            assert (await forge.post(webhook, content=body, headers=headers)).status_code == 401
        await page.reload()
        rows = page.locator("article.trigger tbody tr")
        await rows.nth(2).wait_for()
        assert [await rows.nth(i).get_attribute("data-outcome") for i in range(3)] == [
            "refused", "ignored", "ping"]
        assert "branch 'master' matches none of the branch filters" in await rows.nth(
            1).inner_text()
        text = await page.evaluate("document.body.innerText")
        assert TOKEN not in text and secret not in text  # the secret was shown once
        await screenshot(page, "repository-triggers", tmp_path)

        # edit: another branch filter; the token is kept when its field is left empty
        await card.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("form", name="Edit web")
        assert await edit.get_by_label("Clone token (HTTPS)").input_value() == ""
        await edit.get_by_label("Branches").fill("main")
        await edit.get_by_label("Rebuild schedule").fill("not a cron")
        await edit.get_by_role("button", name="Save the trigger").click()
        alert = edit.get_by_role("alert")
        await alert.wait_for()
        assert "five-field cron expression" in await alert.inner_text()
        await screenshot(page, "trigger-edit", tmp_path)
        await edit.get_by_label("Rebuild schedule").fill("0 4 * * 1")
        await edit.get_by_role("button", name="Save the trigger").click()
        await edit.wait_for(state="detached")
        await page.get_by_text("0 4 * * 1 (UTC)").wait_for()
        await card.get_by_role("button", name="Disable").click()
        await card.get_by_text("disabled", exact=True).wait_for()

        listed = await slipway.api.get("/api/v1/repository/acme/web/trigger/")
        [trigger] = listed.json()["triggers"]
        assert trigger["branches"] == ["main"] and trigger["enabled"] is False
        assert trigger["credentials"] == ["token", "webhook_secret"]
        assert trigger["schedule"]["cron"] == "0 4 * * 1"

        # a push the trigger builds: the build page shows the git source it built
        changed = await slipway.api.patch(
            f"/api/v1/repository/acme/web/trigger/{trigger['id']}",
            json={"enabled": True, "branches": ["master"], "paths": []})
        assert changed.status_code == 200, changed.text
        push = dict(push, head_commit=dict(push["head_commit"],
                                           url="javascript:alert(1)"))
        async with httpx.AsyncClient(timeout=30) as forge:
            body, headers = github_delivery("push", push, secret)
            built = await forge.post(webhook, content=body, headers=headers)
        assert built.status_code == 201, built.text
        await page.goto(f"{slipway.base_url}/#/build/acme/web/{built.json()['build_id']}")
        summary = page.locator("dl.summary")
        await summary.get_by_text(push["after"]).wait_for()
        text = await summary.inner_text()
        assert "refs/heads/master" in text and "https://github.com/acme/web.git" in text
        assert "Initial commit (Codertocat)" in text and "trigger web" in text
        assert await summary.locator("a[href^='javascript']").count() == 0
        assert errors == []
