"""slipway's own route for clients: who the token is, and what this server builds for.

The CLI checks a token with it before saving it (`slipway login`), and a build's registry
and namespace before sending its context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from slipway import __version__
from slipway.api.auth import Principal, authenticate
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.models import ErrorOut, InfoOut, TokenInfo

router = APIRouter(tags=["slipway"], responses={401: {"model": ErrorOut}})


@router.get("/api/v1/slipway/info", response_model=InfoOut)
async def info(
    d: Annotated[ApiDeps, Depends(get_deps)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> InfoOut:
    """The token's name and scopes, and the registries this server's builds may push to
    (SERVER_HOSTNAME first, then ALLOWED_REGISTRIES; with LOOPBACK_REGISTRIES any on
    loopback too)."""
    return InfoOut(
        version=__version__,
        token=TokenInfo(
            name=principal.name,
            scopes={ns: role.name.lower() for ns, role in principal.scopes.items()},
        ),
        build_support=d.config.FEATURE_BUILD_SUPPORT,
        registries=d.config.allowed_registries,
        loopback_registries=d.config.LOOPBACK_REGISTRIES,
    )
