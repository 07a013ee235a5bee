"""What the routes need, held on `app.state.deps` and handed out as a dependency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

from slipway.api.auth_throttle import FailedAuthThrottle
from slipway.api.oidc import OidcClient
from slipway.config.models import AppConfig
from slipway.manager.admission import Admission
from slipway.manager.control import BuildControl
from slipway.store.interfaces import Store
from slipway.tokens.jwt import TokenService

Readiness = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class ApiDeps:
    config: AppConfig
    store: Store
    control: BuildControl
    tokens: TokenService
    readiness: Readiness
    # set when the server stops: live log streams end (clients reconnect and resume)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    # every route that submits a build passes it
    admission: Admission = field(init=False)
    # failed authentications per client address (api/auth_throttle.py)
    auth_throttle: FailedAuthThrottle = field(init=False)
    # single sign-on (ACCESS.OIDC); None: tokens only
    oidc: OidcClient | None = field(init=False)

    def __post_init__(self) -> None:
        self.admission = Admission(self.config, self.store, self.control)
        self.auth_throttle = FailedAuthThrottle(self.config.ACCESS.FAILED_AUTH_LIMIT,
                                                self.config.ACCESS.FAILED_AUTH_WINDOW)
        oidc = self.config.ACCESS.OIDC
        self.oidc = OidcClient(oidc, str(self.config.PUBLIC_URL)) if oidc else None


def get_deps(request: Request) -> ApiDeps:
    value: ApiDeps = request.app.state.deps
    return value
