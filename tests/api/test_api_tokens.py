"""Managed API tokens (docs/access.md): made with at most the maker's rights and shown
once, listed without a secret, revoked and expired ones refused at once with the same
words as an unknown one, repeated failures slowed down, every change in the audit log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client

TOKENS = "/api/v1/slipway/tokens/"
INFO = "/api/v1/slipway/info"
AUDIT = "/api/v1/slipway/audit/"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as e:
        yield e


async def make(c: httpx.AsyncClient, name: str, scopes: dict[str, str],
               expires_in: Any = None, status: int = 201) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "scopes": scopes}
    if expires_in is not None:
        body["expires_in"] = expires_in
    r = await c.post(TOKENS, json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


async def test_a_token_is_shown_once_listed_without_secret_and_works(env: ApiEnv) -> None:
    root = await env.token({"*": "admin"}, "root")
    async with client(env.app, root) as admin:
        made = await make(admin, "ci-web", {"team": "write"}, "30d")
        assert made["token"].startswith("slw_")
        assert made["name"] == "ci-web" and made["scopes"] == {"team": "write"}
        assert made["created_by"] == "root" and made["state"] == "active"
        assert made["expires"] == pytest.approx(time.time() + 30 * 86400, abs=60)
        assert made["last_used"] is None
        async with client(env.app, made["token"]) as ci:
            who = (await ci.get(INFO)).json()["token"]
            assert who == {"name": "ci-web", "scopes": {"team": "write"}}
        listing = await admin.get(TOKENS)
        assert made["token"] not in listing.text and "token_hash" not in listing.text
        rows = {t["name"]: t for t in listing.json()["tokens"]}
        assert set(rows) == {"root", "ci-web"}
        assert rows["ci-web"]["last_used"] is not None  # its request above
        assert rows["ci-web"]["id"] == made["id"]
        assert "token" not in rows["ci-web"]


async def test_nobody_grants_more_than_they_hold(env: ApiEnv) -> None:
    async with client(env.app, await env.token({"team": "write"}, "dev")) as dev:
        r = await dev.post(TOKENS, json={"name": "x", "scopes": {"team": "admin"}})
        assert r.status_code == 403
        assert "only an admin of namespace 'team' may grant admin" in r.json()["error_message"]
        r = await dev.post(TOKENS, json={"name": "x", "scopes": {"other": "read"}})
        assert r.status_code == 403 and "you hold nothing" in r.json()["error_message"]
        r = await dev.post(TOKENS, json={"name": "x", "scopes": {"*": "read"}})
        assert r.status_code == 403
        made = await make(dev, "ci", {"team": "read"})
        assert made["scopes"] == {"team": "read"}
    async with client(env.app, await env.token({"team": "admin"}, "lead")) as lead:
        assert (await make(lead, "deputy", {"team": "admin"}))["scopes"] == {"team": "admin"}
    # a token that expires makes only tokens that expire no later
    short = await env.token({"team": "admin"}, "short", expires=time.time() + 3600)
    async with client(env.app, short) as c:
        r = await c.post(TOKENS, json={"name": "forever", "scopes": {"team": "read"}})
        assert r.status_code == 403 and "expires" in r.json()["error_message"]
        await make(c, "briefer", {"team": "read"}, "30m")
    # nothing refused was stored
    assert [t.name for t in await env.store.tokens.list()] == [
        "dev", "ci", "lead", "deputy", "short", "briefer"]


async def test_bad_requests_say_what_is_wrong_and_store_nothing(env: ApiEnv) -> None:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as admin:
        cases = [
            ({"name": "", "scopes": {"team": "read"}}, "name"),
            ({"name": "x", "scopes": {}}, "at least one"),
            ({"name": "x", "scopes": {"team": "owner"}}, "scopes"),
            ({"name": "x", "scopes": {"Bad Name": "read"}}, "scopes"),
            ({"name": "x", "scopes": {"team": "read"}, "expires_in": "soon"}, "expires_in"),
            ({"name": "x", "scopes": {"team": "read"}, "expires_in": "9999d"}, "expires_in"),
        ]
        for body, words in cases:
            r = await admin.post(TOKENS, json=body)
            assert r.status_code == 400, (body, r.text)
            assert words in r.json()["error_message"], (body, r.text)
    assert [t.name for t in await env.store.tokens.list()] == ["root"]


async def test_revoked_and_expired_tokens_are_refused_like_unknown_ones(env: ApiEnv) -> None:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as admin:
        made = await make(admin, "ci", {"team": "read"})
        brief = await make(admin, "brief", {"team": "read"}, 1)
        async with client(env.app, made["token"]) as ci:
            assert (await ci.get(INFO)).status_code == 200
            first = await admin.delete(f"{TOKENS}{made['id']}")
            assert first.status_code == 200 and first.json()["state"] == "revoked"
            revoked = await ci.get(INFO)
        async with client(env.app, "slw_" + "x" * 43) as unknown:
            never = await unknown.get(INFO)
        async with client(env.app, brief["token"]) as c:
            # it lives 1 s: asked until then, refused from then on
            await asyncio.sleep(max(0.0, brief["expires"] - time.time()))
            expired = await c.get(INFO)
        for r in (revoked, never, expired):
            assert r.status_code == 401
            assert r.json()["error_message"] == "the API token is not valid"
        listing = {t["name"]: t["state"] for t in (await admin.get(TOKENS)).json()["tokens"]}
        assert listing == {"root": "active", "ci": "revoked", "brief": "expired"}
        # revoking again changes nothing; an unknown id is a 404
        again = await admin.delete(f"{TOKENS}{made['id']}")
        assert again.status_code == 200 and again.json()["revoked"] == first.json()["revoked"]
        assert (await admin.delete(f"{TOKENS}no-such-id")).status_code == 404


async def test_a_token_is_managed_by_its_maker_and_admins_only(env: ApiEnv) -> None:
    root = await env.token({"*": "admin"}, "root")
    dev_token = await env.token({"team": "write", "other": "read"}, "dev")
    async with client(env.app, dev_token) as dev, client(env.app, root) as admin:
        mine = await make(dev, "dev-ci", {"team": "read"})
        theirs = await make(admin, "ops", {"team": "read"})
        seen = [t["name"] for t in (await dev.get(TOKENS)).json()["tokens"]]
        assert seen == ["dev-ci"]
        # another token of the same name is not its maker
        async with client(env.app, await env.token({"team": "read"}, "dev")) as namesake:
            assert (await namesake.get(TOKENS)).json()["tokens"] == []
            assert (await namesake.delete(f"{TOKENS}{mine['id']}")).status_code == 404
        assert (await dev.delete(f"{TOKENS}{theirs['id']}")).status_code == 404
        assert (await dev.delete(f"{TOKENS}{mine['id']}")).status_code == 200
    async with client(env.app, await env.token({"team": "admin"}, "lead")) as lead:
        seen_by_lead = {(t["name"], tuple(t["scopes"])) for t in
                        (await lead.get(TOKENS)).json()["tokens"]}
        # those within team only: not root's (*), not dev's (team and other)
        assert seen_by_lead == {("dev-ci", ("team",)), ("ops", ("team",)),
                                ("dev", ("team",)), ("lead", ("team",))}


async def test_repeated_failures_are_slowed_down_and_say_nothing_of_tokens(
        tmp_path: Path) -> None:
    async with api_env(tmp_path, ACCESS={"FAILED_AUTH_LIMIT": 3,
                                         "FAILED_AUTH_WINDOW": 600}) as env:
        good = await env.token({"team": "read"}, "good")
        async with client(env.app, "slw_guess") as guesser:
            statuses = [(await guesser.get(INFO)).status_code for _ in range(3)]
            assert statuses == [401, 401, 401]
            slowed = await guesser.get(INFO)
        assert slowed.status_code == 429
        assert 1 <= int(slowed.headers["retry-after"]) <= 600
        assert "token" not in slowed.json()["error_message"].replace("authentications", "")
        # the same address is slowed whatever it sends, a good token too: a guess that
        # happens to be right tells it nothing more
        async with client(env.app, good) as c:
            assert (await c.get(INFO)).status_code == 429
        failed = [e for e in await env.store.audit.query(_all()) if e.action == "auth.failed"]
        assert len(failed) == 3 and {e.actor for e in failed} == {"(unknown)"}
        assert all("slw_guess" not in str(e.as_dict()) for e in failed)


def _all() -> Any:
    from slipway.store.records import AuditQuery
    return AuditQuery(limit=1000)


async def test_token_changes_are_in_the_audit_log_without_secrets(env: ApiEnv) -> None:
    root = await env.token({"*": "admin"}, "root")
    async with client(env.app, root) as admin:
        made = await make(admin, "ci", {"team": "write"})
        await admin.delete(f"{TOKENS}{made['id']}")
        r = await admin.get(AUDIT, params={"actor": "root"})
        assert r.status_code == 200, r.text
        entries = r.json()["entries"]
        assert [(e["action"], e["target"]) for e in entries] == [
            ("token.create", made["id"]), ("token.revoke", made["id"])]
        assert entries[0]["details"]["scopes"] == {"team": "write"}
        assert entries[0]["source"] == "127.0.0.1"
        assert made["token"] not in r.text and root not in r.text


async def test_a_revoke_holds_at_once_on_another_manager(tmp_path: Path) -> None:
    """Two API processes' apps on one database (as two managers): a token revoked through
    one is refused by the other at its next request; nothing cached it."""
    async with api_env(tmp_path) as one, api_env(tmp_path) as two:
        assert one.config.DB_URI == two.config.DB_URI
        async with client(one.app, await one.token({"*": "admin"}, "root")) as admin:
            made = await make(admin, "ci", {"team": "read"})
            async with client(two.app, made["token"]) as elsewhere:
                assert (await elsewhere.get(INFO)).status_code == 200
                assert (await admin.delete(f"{TOKENS}{made['id']}")).status_code == 200
                assert (await elsewhere.get(INFO)).status_code == 401
