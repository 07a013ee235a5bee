"""Single sign-on's refusals that need no provider to answer: a server without ACCESS.OIDC
says so; a callback that this browser did not start, or whose state does not match, is
refused on a page saying why (and in the audit log); a provider that does not answer is
a 502 page, not a 500."""

from __future__ import annotations

from pathlib import Path

from support.api_app import api_env, client
from support.ports import free_port

from slipway.store.records import AuditQuery


async def test_without_oidc_the_login_says_to_use_a_token(tmp_path: Path) -> None:
    async with api_env(tmp_path) as env, client(env.app) as c:
        assert (await c.get("/api/v1/slipway/signin")).json() == {"token": True,
                                                                 "oidc": False}
        r = await c.get("/auth/oidc/login")
        assert r.status_code == 404 and "sign in with an API token" in r.text


async def test_callbacks_not_started_here_are_refused(tmp_path: Path) -> None:
    oidc = {"ISSUER": f"http://127.0.0.1:{free_port()}", "CLIENT_ID": "slipway",
            "CLIENT_SECRET": "s3cret-never-shown", "GROUP_ROLES": {"devs": {"web": "write"}}}
    async with api_env(tmp_path, ACCESS={"OIDC": oidc}) as env, client(env.app) as c:
        assert (await c.get("/api/v1/slipway/signin")).json()["oidc"] is True
        no_cookie = await c.get("/auth/oidc/callback", params={"code": "x", "state": "y"})
        assert no_cookie.status_code == 403
        assert "was not started here" in no_cookie.text
        c.cookies.set("slipway_oidc_login", "forged", path="/auth/oidc")
        forged = await c.get("/auth/oidc/callback", params={"code": "x", "state": "y"})
        assert forged.status_code == 403 and "start again" in forged.text
        denied = await c.get("/auth/oidc/callback",
                             params={"error": "access_denied", "state": "y"})
        assert denied.status_code == 403 and "access_denied" in denied.text
        # the provider does not answer: said so, nothing else
        away = await c.get("/auth/oidc/login")
        assert away.status_code == 502 and "does not answer" in away.text
        failed = await env.store.audit.query(AuditQuery(action="auth.failed"))
        assert len(failed) == 3
        assert all(e.details["method"] == "oidc" for e in failed)
        assert "s3cret" not in str([e.as_dict() for e in failed])
