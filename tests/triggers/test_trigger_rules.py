"""A trigger's rules as plain functions (filters, tag templates) and its settings refused
through the API with a message that says what to fix, nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client

from slipway.triggers.matching import image_tags, why_not
from slipway.triggers.webhooks import Push

SHA = "0123456789abcdef0123456789abcdef01234567"
TRIGGERS = "/api/v1/repository/acme/web/trigger/"


def push(ref: str, changed: list[str] | None = None) -> Push:
    return Push(ref=ref, commit=SHA, default_branch="main",
                changed=None if changed is None else frozenset(changed))


def test_tag_templates() -> None:
    templates = ["{branch}", "{tag}", "v{tag}-{sha:7}", "{branch}-{sha}", "latest"]
    assert image_tags(templates, push("refs/heads/main"), "main") == [
        "main", f"main-{SHA}", "latest"]
    # a branch name with '/' becomes a valid tag; latest only for the default branch
    assert image_tags(templates, push("refs/heads/feature/Login_v2"), "main") == [
        "feature-Login_v2", f"feature-Login_v2-{SHA}"]
    assert image_tags(templates, push("refs/tags/1.2.0"), "main") == ["1.2.0", "v1.2.0-0123456"]


def test_filters() -> None:
    settings: dict[str, Any] = {"branches": ["main", "/^release-[0-9]+$/"], "tags": ["v*"],
                                "paths": ["src/**", "Dockerfile"]}
    assert why_not(settings, push("refs/heads/main", ["src/app/x.py"])) is None
    assert why_not(settings, push("refs/heads/release-12", ["Dockerfile"])) is None
    assert "release-12a" in str(why_not(settings, push("refs/heads/release-12a", ["src/a"])))
    assert "matches the path filters" in str(why_not(settings, push("refs/heads/main",
                                                                    ["docs/intro.rst"])))
    # files not known (a long push): built
    assert why_not(settings, push("refs/heads/main")) is None
    assert why_not(settings, push("refs/tags/v1")) is None
    assert "tag 'x1'" in str(why_not(settings, push("refs/tags/x1")))
    assert "neither a branch nor a tag" in str(why_not(settings, push("refs/notes/x")))


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[tuple[ApiEnv, httpx.AsyncClient]]:
    async with api_env(tmp_path) as env, \
            client(env.app, await env.token({"acme": "write"})) as c:
        yield env, c


@pytest.mark.parametrize(("fields", "message"), [
    ({"git_url": "https://user:ghp_secret@github.com/a/b.git"}, "put no user or token in the URL"),
    ({"git_url": "ftp://u:ghp_secret@example.com/a.git"}, "is not a git repository address"),
    ({"ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"}, "git_url is not an SSH address"),
    ({"git_url": "git@github.com:a/b.git", "token": "ghp_x"}, "a token is for HTTPS URLs"),
    ({"tag_templates": ["{commit}"]}, "has an unknown field"),
    ({"tag_templates": ["a/b"]}, "would not make a valid image tag"),
    ({"branches": ["/[/"]}, "is not a valid regular expression"),
    ({"schedule": {"cron": "every day"}}, "is not a five-field cron expression"),
    ({"kind": "bitbucket"}, "kind"),
    ({"build_args": {"1X": "y"}}, "build_args"),
])
async def test_bad_settings_are_refused_naming_the_field(
    writer: tuple[ApiEnv, httpx.AsyncClient], fields: dict[str, Any], message: str
) -> None:
    _, c = writer
    body = {"name": "web", "kind": "github", "git_url": "https://github.com/a/b.git", **fields}
    r = await c.post(TRIGGERS, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error_message"]
    assert "ghp_secret" not in r.text
    assert (await c.get(TRIGGERS)).json()["triggers"] == []


async def test_a_taken_name_and_a_bad_change_change_nothing(
    writer: tuple[ApiEnv, httpx.AsyncClient]
) -> None:
    _, c = writer
    body = {"name": "web", "kind": "github", "git_url": "https://github.com/a/b.git"}
    first = (await c.post(TRIGGERS, json=body)).json()
    r = await c.post(TRIGGERS, json=body)
    assert r.status_code == 409 and "already has a trigger named 'web'" in r.text
    r = await c.patch(f"{TRIGGERS}{first['id']}", json={"tag_templates": []})
    assert r.status_code == 400 and "give at least one" in r.text
    r = await c.patch(f"{TRIGGERS}{first['id']}", json={"nonsense": 1})
    assert r.status_code == 400
    after = (await c.get(f"{TRIGGERS}{first['id']}")).json()
    assert after["tag_templates"] == first["tag_templates"] and after["updated"] == first[
        "updated"]
    r = await c.patch(f"{TRIGGERS}{first['id']}", json={"rotate_webhook_secret": True})
    assert r.json()["webhook_secret"] not in (None, first["webhook_secret"])
