"""Webhook deliveries as the forges send them (GitHub's own examples, GitLab's documented
bodies), through the API's webhook route over a real SQLite store: parsed, filtered,
signature-checked, built once; the refusals each answered and recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.forge import github_delivery, github_example, gitlab_delivery, gitlab_example

TRIGGERS = "/api/v1/repository/acme/web/trigger/"
BUILDS = "/api/v1/repository/acme/web/build/"
GITHUB_SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, TRIGGER_WEBHOOK_MAX_BYTES=64 * 1024) as e:
        yield e


@pytest.fixture
async def writer(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"acme": "write"}, "dev")) as c:
        yield c


async def make_trigger(c: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "main", "kind": "github", "git_url": "https://github.com/acme/web.git",
            **fields}
    r = await c.post(TRIGGERS, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliver(env: ApiEnv, trigger: dict[str, Any], body: bytes,
                  headers: dict[str, str]) -> httpx.Response:
    path = httpx.URL(trigger["webhook_url"]).path
    async with client(env.app) as anonymous:  # a forge has no API token
        return await anonymous.post(path, content=body, headers=headers)


async def builds(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await c.get(BUILDS, params={"limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["builds"])


async def deliveries(c: httpx.AsyncClient, trigger: dict[str, Any]) -> list[dict[str, Any]]:
    r = await c.get(f"{TRIGGERS}{trigger['id']}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def test_github_push_builds_the_pushed_commit_once(
    env: ApiEnv, writer: httpx.AsyncClient
) -> None:
    trigger = await make_trigger(writer, tag_templates=["{branch}", "{sha:7}", "latest"])
    secret = trigger["webhook_secret"]
    payload = github_example("push", ref="refs/heads/master", deleted=False)
    body, headers = github_delivery("push", payload, secret)
    r = await deliver(env, trigger, body, headers)
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "built"
    [build] = await builds(writer)
    assert build["id"] == r.json()["build_id"]
    # master is the example repository's default branch: latest too
    assert build["tags"] == ["master", GITHUB_SHA[:7], "latest"]
    source = build["trigger_metadata"]
    assert source["commit"] == GITHUB_SHA
    assert source["ref"] == "refs/heads/master"
    assert source["git_url"] == "https://github.com/acme/web.git"
    assert source["message"] == payload["head_commit"]["message"]
    assert source["author"]["name"] == "Codertocat"
    assert build["trigger"]["id"] == trigger["id"]

    # GitHub's redelivery (same X-GitHub-Delivery): answered, not built again
    again = await deliver(env, trigger, body, headers)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["build_id"] == build["id"]
    assert len(await builds(writer)) == 1
    shown = await deliveries(writer, trigger)
    assert [d["outcome"] for d in shown] == ["built"]
    assert shown[0]["commit"] == GITHUB_SHA and shown[0]["build_id"] == build["id"]


async def test_github_tag_push_ping_and_create(env: ApiEnv, writer: httpx.AsyncClient
                                               ) -> None:
    trigger = await make_trigger(writer, tags=["simple-*"])
    secret = trigger["webhook_secret"]
    ping = github_example("ping")
    r = await deliver(env, trigger, *github_delivery("ping", ping, secret))
    assert r.status_code == 200 and r.json()["outcome"] == "ping", r.text

    create = github_example("create", ref_type="tag")
    r = await deliver(env, trigger, *github_delivery("create", create, secret))
    assert r.status_code == 202, r.text
    assert "push event" in r.json()["reason"]

    tag = github_example("push", ref="refs/tags/simple-tag", deleted=False)
    r = await deliver(env, trigger, *github_delivery("push", tag, secret))
    assert r.status_code == 201, r.text
    [build] = await builds(writer)
    # the default templates: {branch} and latest do not apply to a tag
    assert build["tags"] == ["simple-tag", GITHUB_SHA[:7]]
    assert build["trigger_metadata"]["ref"] == "refs/tags/simple-tag"

    # the webhook's other content type, application/x-www-form-urlencoded
    form = urlencode({"payload": json.dumps(dict(tag, after="b" * 40))}).encode()
    _, headers = github_delivery("push", {}, None)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
        secret.encode(), form, hashlib.sha256).hexdigest()
    r = await deliver(env, trigger, form, headers)
    assert r.status_code == 201 and r.json()["commit"] == "b" * 40, r.text

    deleted = github_example("push", ref="refs/tags/simple-tag", deleted=True)
    r = await deliver(env, trigger, *github_delivery("push", deleted, secret))
    assert r.status_code == 202 and "deleted" in r.json()["reason"], r.text
    assert len(await builds(writer)) == 2
    outcomes = [d["outcome"] for d in await deliveries(writer, trigger)]
    assert outcomes == ["ignored", "built", "built", "ignored", "ping"]


async def test_filters_answer_202_with_the_reason(env: ApiEnv, writer: httpx.AsyncClient
                                                  ) -> None:
    trigger = await make_trigger(writer, branches=["release-*", "/^hotfix/"], tags=["v*"])
    secret = trigger["webhook_secret"]
    push = github_example("push", ref="refs/heads/master", deleted=False)
    r = await deliver(env, trigger, *github_delivery("push", push, secret))
    assert r.status_code == 202, r.text
    reason = r.json()["reason"]
    assert "branch 'master'" in reason and "release-*" in reason
    tag = github_example("push", ref="refs/tags/simple-tag", deleted=False)
    r = await deliver(env, trigger, *github_delivery("push", tag, secret))
    assert r.status_code == 202 and "tag 'simple-tag'" in r.json()["reason"]

    paths = await make_trigger(writer, name="docs", paths=["docs/**", "Dockerfile"])
    r = await deliver(env, paths, *github_delivery("push", push, paths["webhook_secret"]))
    assert r.status_code == 202, r.text
    assert "README.md" in r.json()["reason"] and "docs/**" in r.json()["reason"]
    # GitHub lists 20 commits of a longer push: the files of the others are not known,
    # so the path filter cannot rule it out
    many = dict(push, commits=push["commits"] * 20)
    r = await deliver(env, paths, *github_delivery("push", many, paths["webhook_secret"]))
    assert r.status_code == 201, r.text
    readme = await make_trigger(writer, name="readme", paths=["*.md"])
    r = await deliver(env, readme, *github_delivery("push", push, readme["webhook_secret"]))
    assert r.status_code == 201, r.text
    assert len(await builds(writer)) == 2
    shown = await deliveries(writer, trigger)
    assert [d["outcome"] for d in shown] == ["ignored", "ignored"]
    assert "release-*" in shown[1]["reason"]


async def test_refused_deliveries(env: ApiEnv, writer: httpx.AsyncClient,
                                  caplog: pytest.LogCaptureFixture) -> None:
    trigger = await make_trigger(writer)
    secret = trigger["webhook_secret"]
    push = github_example("push", ref="refs/heads/master", deleted=False)
    caplog.set_level(logging.WARNING, "slipway.triggers")

    unsigned = await deliver(env, trigger, *github_delivery("push", push, None))
    assert unsigned.status_code == 401, unsigned.text
    assert "X-Hub-Signature-256" in unsigned.json()["error_message"]

    body, headers = github_delivery("push", push, "not-the-secret")
    wrong = await deliver(env, trigger, body, headers)
    assert wrong.status_code == 401, wrong.text
    # the body changed after signing (one byte): refused too
    body, headers = github_delivery("push", push, secret)
    tampered = await deliver(env, trigger, body.replace(b"master", b"mastex", 1), headers)
    assert tampered.status_code == 401

    big = dict(push, padding="x" * (64 * 1024))
    r = await deliver(env, trigger, *github_delivery("push", big, secret))
    assert r.status_code == 413, r.text
    assert "TRIGGER_WEBHOOK_MAX_BYTES" in r.json()["error_message"]

    assert await builds(writer) == []
    shown = await deliveries(writer, trigger)
    assert [d["outcome"] for d in shown] == ["refused"] * 3
    assert secret not in caplog.text and secret not in json.dumps(shown)
    assert caplog.text.count("refused") == 3
    # the secret is shown once, at creation
    r = await writer.get(f"{TRIGGERS}{trigger['id']}")
    assert r.json()["webhook_secret"] is None and "webhook_secret" in r.json()["credentials"]
    assert secret not in r.text


async def test_gitlab_push_and_tag_push(env: ApiEnv, writer: httpx.AsyncClient) -> None:
    trigger = await make_trigger(writer, kind="gitlab",
                                 git_url="https://gitlab.example.com/mike/diaspora.git",
                                 paths=["docs/**"])
    token = trigger["webhook_secret"]
    push = gitlab_example("push")
    r = await deliver(env, trigger, *gitlab_delivery("Push Hook", push, "wrong-token"))
    assert r.status_code == 401, r.text
    r = await deliver(env, trigger, *gitlab_delivery("Push Hook", push, None))
    assert r.status_code == 401 and "X-Gitlab-Token" in r.text
    body, headers = gitlab_delivery("Push Hook", push, token)
    r = await deliver(env, trigger, body, headers)
    # 4 commits pushed, 2 listed: the changed files are not all known, so the path
    # filter cannot rule the push out
    assert r.status_code == 201, r.text
    [build] = await builds(writer)
    assert build["tags"] == ["master", "da15608", "latest"]
    assert build["trigger_metadata"]["commit"] == push["checkout_sha"]
    assert build["trigger_metadata"]["message"] == "fixed readme"
    assert build["trigger_metadata"]["author"]["name"] == "GitLab dev user"
    r = await deliver(env, trigger, body, headers)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"

    tag = gitlab_example("tag_push")
    r = await deliver(env, trigger, *gitlab_delivery("Tag Push Hook", tag, token))
    assert r.status_code == 201, r.text
    tagged = next(b for b in await builds(writer) if b["id"] == r.json()["build_id"])
    assert tagged["tags"] == ["v1.0.0", "82b3d5a"]

    listed = dict(push, total_commits_count=2)
    r = await deliver(env, trigger, *gitlab_delivery("Push Hook", listed, token))
    assert r.status_code == 202, r.text
    assert "app/controller/application.rb" in r.json()["reason"]
    assert len(await builds(writer)) == 2


async def test_generic_form(env: ApiEnv, writer: httpx.AsyncClient) -> None:
    trigger = await make_trigger(writer, kind="generic",
                                 git_url="ssh://git@git.example.com/acme/web.git")
    secret = trigger["webhook_secret"]
    body = json.dumps({"ref": "refs/heads/main", "commit": "a" * 40, "message": "hello",
                       "author": {"name": "Ann"}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Slipway-Signature-256": signature, "X-Slipway-Delivery": "d-1"}
    r = await deliver(env, trigger, body, headers)
    assert r.status_code == 201, r.text
    assert r.json()["tags"] == ["main", "aaaaaaa", "latest"]
    r = await deliver(env, trigger, body, headers)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"
    # no delivery id: the body's hash is its id, so the same body is not built twice
    del headers["X-Slipway-Delivery"]
    assert (await deliver(env, trigger, body, headers)).status_code == 201
    assert (await deliver(env, trigger, body, headers)).json()["outcome"] == "duplicate"
    bad = json.dumps({"ref": "main", "commit": "a" * 40}).encode()
    headers["X-Slipway-Signature-256"] = "sha256=" + hmac.new(
        secret.encode(), bad, hashlib.sha256).hexdigest()
    r = await deliver(env, trigger, bad, headers)
    assert r.status_code == 400 and "refs/heads/BRANCH" in r.text


async def test_disabled_trigger_and_read_scope(env: ApiEnv, writer: httpx.AsyncClient
                                               ) -> None:
    trigger = await make_trigger(writer)
    async with client(env.app, await env.token({"acme": "read"}, "viewer")) as reader:
        r = await reader.patch(f"{TRIGGERS}{trigger['id']}", json={"enabled": False})
        assert r.status_code == 403, r.text
        assert (await reader.get(TRIGGERS)).status_code == 200
    r = await writer.patch(f"{TRIGGERS}{trigger['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text
    push = github_example("push", ref="refs/heads/master", deleted=False)
    r = await deliver(env, trigger, *github_delivery("push", push,
                                                     trigger["webhook_secret"]))
    assert r.status_code == 202 and "disabled" in r.json()["reason"]
    assert await builds(writer) == []
