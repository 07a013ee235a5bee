"""The FastAPI application: Quay's build routes plus slipway's live logs, metrics, health."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from slipway import __version__
from slipway.api import (
    routes_audit,
    routes_builds,
    routes_filedrop,
    routes_info,
    routes_oidc,
    routes_ops,
    routes_overview,
    routes_rebuild,
    routes_signing,
    routes_tokens,
    routes_traces,
    routes_triggers,
    routes_webhooks,
    sse,
)
from slipway.api.deps import ApiDeps, Readiness
from slipway.api.errors import install_handlers
from slipway.api.ui import mount_ui
from slipway.config.models import AppConfig
from slipway.manager.control import BuildControl
from slipway.store.interfaces import Store
from slipway.tokens.jwt import TokenService


def create_app(
    *,
    config: AppConfig,
    store: Store,
    control: BuildControl,
    tokens: TokenService,
    readiness: Readiness,
    closing: asyncio.Event | None = None,
) -> FastAPI:
    # /docs and /redoc with their JavaScript and CSS served from the installed package (at
    # /static-offline-docs), not from a CDN: they work on a machine without internet
    app = FastAPIOffline(
        title="slipway",
        version=__version__,
        description="Container-image builds, with Red Hat Quay's build API.",
    )
    app.state.deps = ApiDeps(config, store, control, tokens, readiness,
                             closing or asyncio.Event())
    install_handlers(app)
    app.include_router(routes_builds.router)
    app.include_router(sse.router)
    app.include_router(routes_filedrop.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_info.router)
    app.include_router(routes_rebuild.router)
    app.include_router(routes_overview.router)
    app.include_router(routes_triggers.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_tokens.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_oidc.router)
    app.include_router(routes_signing.router)
    app.include_router(routes_traces.router)
    mount_ui(app)
    return app
