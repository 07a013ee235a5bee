"""slipway's token routes (docs/access.md): make a token (shown once), list tokens
(never a secret), revoke one. Each make and revoke is in the audit log."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from slipway.api import audit
from slipway.api.auth import Principal, authenticate, mint_token
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import not_found
from slipway.api.models import ErrorOut
from slipway.api.models_access import TokenCreated, TokenList, TokenOut, TokenRequest
from slipway.api.token_grants import check_grant, may_manage
from slipway.store.records import StoredToken

PREFIX = "/api/v1/slipway/tokens"
router = APIRouter(prefix=PREFIX, tags=["access"],
                   responses={code: {"model": ErrorOut} for code in (400, 401, 403, 429)})
Deps = Annotated[ApiDeps, Depends(get_deps)]
Holder = Annotated[Principal, Depends(authenticate)]


def token_view(stored: StoredToken, now: float) -> TokenOut:
    state = ("revoked" if stored.revoked is not None
             else "expired" if not stored.usable(now) else "active")
    return TokenOut(id=stored.id, name=stored.name, scopes=dict(stored.scopes),
                    created_by=stored.created_by, created=stored.created,
                    expires=stored.expires, last_used=stored.last_used,
                    revoked=stored.revoked, state=state)


@router.post("/", status_code=201, response_model=TokenCreated)
async def create(body: TokenRequest, request: Request, d: Deps, holder: Holder
                 ) -> JSONResponse:
    """Make a token of at most the scopes (and lifetime) the caller's own token holds;
    the answer holds the token, which is never shown again."""
    now = time.time()
    expires = None if body.lifetime is None else now + body.lifetime
    check_grant(holder, body.scopes, expires)
    token, stored = await mint_token(d.store, body.name, body.scopes, creator=holder,
                                     expires=expires)
    await audit.record(request, holder.name, audit.TOKEN_CREATE, target=stored.id,
                       details={"name": stored.name, "scopes": dict(stored.scopes),
                                "expires": stored.expires})
    created = TokenCreated(**token_view(stored, now).model_dump(), token=token)
    return JSONResponse(created.model_dump(mode="json"), status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.get("/", response_model=TokenList)
async def list_tokens(d: Deps, holder: Holder) -> TokenList:
    """The tokens the caller made, and those of namespaces it is admin of (oldest
    first); revoked and expired ones too, marked so."""
    now = time.time()
    return TokenList(tokens=[token_view(t, now) for t in await d.store.tokens.list()
                             if may_manage(holder, t)])


@router.delete("/{token_id}", response_model=TokenOut,
               responses={404: {"model": ErrorOut}})
async def revoke(token_id: str, request: Request, d: Deps, holder: Holder) -> TokenOut:
    """Revoke a token: every manager refuses it from the next request on."""
    stored = await d.store.tokens.get(token_id) if len(token_id) <= 36 else None
    # a token the caller may not manage is as unknown as one that does not exist
    if stored is None or not may_manage(holder, stored):
        raise not_found(f"no token {token_id!r} that you may revoke")
    now = time.time()
    if stored.revoked is None:
        await d.store.tokens.revoke(stored.id, now)
        await audit.record(request, holder.name, audit.TOKEN_REVOKE, target=stored.id,
                           details={"name": stored.name, "scopes": dict(stored.scopes)})
    revoked = await d.store.tokens.get(stored.id)
    assert revoked is not None
    return token_view(revoked, now)
