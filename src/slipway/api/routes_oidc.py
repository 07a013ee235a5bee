"""Sign-in and sign-out (docs/access.md): which ways to sign in this server offers, the
OpenID Connect login and its callback (the web UI's, and the CLI's through a loopback
address), and sign-out. A sign-in gives a token of the user's groups' roles that expires
after ACCESS.OIDC.SESSION_LIFETIME; a sign-out revokes it."""

from __future__ import annotations

import html
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from slipway.api import audit
from slipway.api.auth import Principal, authenticate, mint_token
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import not_found
from slipway.api.models import ErrorOut
from slipway.api.oidc import LOGIN_COOKIE, LOGIN_LIFETIME_S, OidcClient, SignInFailed, roles_for
from slipway.api.ui import sign_in_link

router = APIRouter(tags=["access"])
Deps = Annotated[ApiDeps, Depends(get_deps)]
COOKIE_PATH = "/auth/oidc"


class SignInMethods(BaseModel):
    token: bool = Field(True, description="an API token (always)")
    oidc: bool = Field(description="single sign-on: GET /auth/oidc/login (ACCESS.OIDC)")


class SignedOut(BaseModel):
    revoked: bool = Field(description="true: the token was a sign-in's and is revoked now; "
                          "false: an API token, which stays valid (forget it, or revoke it)")


@router.get("/api/v1/slipway/signin", response_model=SignInMethods)
async def sign_in_methods(d: Deps) -> SignInMethods:
    """How one may sign in to this server (no token needed)."""
    return SignInMethods(oidc=d.oidc is not None)


class SignedIn(BaseModel):
    username: str
    scopes: dict[str, str]


@router.post("/api/v1/slipway/signin", response_model=SignedIn,
             responses={code: {"model": ErrorOut} for code in (401, 429)})
async def sign_in_with_token(request: Request,
                             principal: Annotated[Principal, Depends(authenticate)]
                             ) -> SignedIn:
    """Sign in with an API token (the web UI's form, `slipway login`): the token is
    checked like any other, and the sign-in is in the audit log."""
    if not principal.session:  # a single sign-on's was recorded by its callback
        await audit.record(request, principal.name, audit.SIGN_IN,
                           target=principal.token_id, details={"method": "token"})
    return SignedIn(username=principal.name,
                    scopes={ns: role.name.lower() for ns, role in principal.scopes.items()})


@router.post("/api/v1/slipway/signout", response_model=SignedOut,
             responses={code: {"model": ErrorOut} for code in (401, 429)})
async def sign_out(request: Request, d: Deps,
                   principal: Annotated[Principal, Depends(authenticate)]) -> SignedOut:
    """Sign out: a single sign-on's token is revoked on every manager at once."""
    revoked = principal.session and await d.store.tokens.revoke(principal.token_id,
                                                                 time.time())
    await audit.record(request, principal.name, audit.SIGN_OUT, target=principal.token_id,
                       details={"method": "oidc" if principal.session else "token"})
    return SignedOut(revoked=bool(revoked))


def _client(d: ApiDeps) -> OidcClient:
    if d.oidc is None:
        raise not_found("single sign-on is not set up on this server (ACCESS.OIDC); sign "
                        "in with an API token")
    return d.oidc


@router.get("/auth/oidc/login", include_in_schema=False)
async def login(d: Deps, cli_port: Annotated[int | None, Query(ge=1024, le=65535)] = None
                ) -> Response:
    """To the provider; `cli_port`: the CLI waits on 127.0.0.1 at that port for the
    token (only a port is taken, so the token never goes anywhere but loopback)."""
    oidc = _client(d)
    try:
        url, cookie = await oidc.begin(cli_port)
    except SignInFailed as exc:
        return _failure_page(str(exc), 502)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_LIFETIME_S, path=COOKIE_PATH,
                        httponly=True, samesite="lax",
                        secure=str(d.config.PUBLIC_URL).startswith("https://"))
    return response


@router.get("/auth/oidc/callback", include_in_schema=False)
async def callback(request: Request, d: Deps, code: str | None = None,
                   state: str | None = None, error: str | None = None,
                   error_description: str | None = None) -> Response:
    """The provider's answer: a token of the user's roles, handed to the web UI (in the
    address's fragment) or to the CLI's loopback address."""
    oidc = _client(d)
    config = oidc.config
    username = audit.UNKNOWN_ACTOR
    try:
        if error is not None:
            raise SignInFailed(f"the OpenID provider said: {error_description or error}")
        pending = oidc.pending(request.cookies.get(LOGIN_COOKIE), state or "")
        if not code:
            raise SignInFailed("the OpenID provider gave no code; start again")
        identity = await oidc.finish(code, pending)
        username = identity.username
        scopes = roles_for(identity.groups, config.GROUP_ROLES)
        if not scopes:
            raise SignInFailed(
                f"{identity.username} is in no group that has a role on this server "
                "(ACCESS.OIDC.GROUP_ROLES); ask its admin to map one of your groups")
    except SignInFailed as exc:
        await audit.record(request, username, audit.SIGN_IN_FAILED,
                           details={"method": "oidc", "reason": str(exc)})
        return _failure_page(str(exc), 403)
    expires = time.time() + config.SESSION_LIFETIME
    token, stored = await mint_token(d.store, identity.username, scopes, expires=expires,
                                     session_of=f"oidc:{identity.subject}")
    await audit.record(request, identity.username, audit.SIGN_IN, target=stored.id,
                       details={"method": "oidc", "groups": identity.groups,
                                "scopes": scopes, "expires": expires,
                                "client": "cli" if pending.cli_port else "web"})
    if pending.cli_port is not None:
        target = f"http://127.0.0.1:{pending.cli_port}/callback?token={token}"
    else:
        target = sign_in_link(str(d.config.PUBLIC_URL), token)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _failure_page(message: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Sign-in failed · slipway</title></head><body>"
        "<h1>Sign-in failed</h1>"
        f"<p role=\"alert\">{html.escape(message)}</p>"
        "<p><a href=\"/\">Back to slipway</a></p></body></html>")
    return HTMLResponse(body, status_code=status,
                        headers={"Content-Security-Policy": "default-src 'none'",
                                 "Cache-Control": "no-store"})
