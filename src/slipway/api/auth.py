"""API tokens: `Authorization: Bearer <token>`, stored as sha256 hashes with namespace
scopes `{namespace or "*": "read" | "write" | "admin"}` (admin > write > read), an
optional expiry, and revocable (docs/access.md).

Every request reads its token's row: a revoked or expired token is refused at once by
every manager. Every refusal of a token says the same ("not valid"), whether it never
existed, expired or was revoked; repeated ones from one address are slowed down
(api/auth_throttle.py) and each is in the audit log."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from fastapi import Request

from slipway.api import audit
from slipway.api.auth_throttle import FailedAuthThrottle
from slipway.api.errors import ApiError
from slipway.config.models import AppConfig
from slipway.private_files import write_private
from slipway.store.interfaces import Store
from slipway.store.records import LAST_USED_STEP_S, StoredToken

log = logging.getLogger(__name__)

TOKEN_PREFIX = "slw_"
# the `created_by` of a single sign-on's token (api/routes_oidc.py): its principal is
# the signed-in user (`creator_id`, "oidc:" and the subject), not the token
SESSION_CREATOR = "(single sign-on)"
ADMIN_TOKEN_FILE = "admin-token"


class Role(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scopes: Mapping[str, str]) -> dict[str, Role]:
    parsed: dict[str, Role] = {}
    for namespace, role in scopes.items():
        try:
            parsed[namespace] = Role[role.upper()]
        except KeyError:
            raise ValueError(
                f"scope {namespace!r}: {role!r} is not a role; use read, write or admin"
            ) from None
    return parsed


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: dict[str, Role]
    # who it is: the token's id (docs/access.md), or "oidc:" and a signed-in user's subject
    id: str = ""
    expires: float | None = None  # UNIX time; None: never
    token_id: str = ""
    session: bool = False  # a single sign-on's token: signing out revokes it

    def role_for(self, namespace: str) -> Role | None:
        roles = [r for r in (self.scopes.get(namespace), self.scopes.get("*")) if r is not None]
        return max(roles) if roles else None

    def allows(self, namespace: str, role: Role) -> bool:
        have = self.role_for(namespace)
        return have is not None and have >= role

    def allows_any(self, role: Role) -> bool:
        return any(r >= role for r in self.scopes.values())


async def mint_token(store: Store, name: str, scopes: Mapping[str, str], *,
                     creator: Principal | None = None, expires: float | None = None,
                     session_of: str | None = None) -> tuple[str, StoredToken]:
    """Mint a token, store its hash; the token (shown once, never stored) and its row.
    `session_of`: the token of a single sign-on, for this user ("oidc:" + subject)."""
    parse_scopes(scopes)  # reject unknown roles before storing
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created_by: str | None
    creator_id: str | None
    if session_of is not None:
        created_by, creator_id = SESSION_CREATOR, session_of
    else:
        created_by = creator.name if creator else None
        creator_id = creator.id if creator else None
    stored = await store.tokens.add(
        hash_token(token), name, {ns: role.lower() for ns, role in scopes.items()},
        created_by=created_by, creator_id=creator_id, expires=expires)
    return token, stored


async def create_token(store: Store, name: str, scopes: Mapping[str, str], *,
                       expires: float | None = None) -> str:
    """A new token made by the server itself (the first admin token, tests)."""
    token, _ = await mint_token(store, name, scopes, expires=expires)
    return token


async def lookup_token(store: Store, token: str, now: float | None = None
                       ) -> Principal | None:
    """The token's principal; None when it is unknown, expired or revoked."""
    now = time.time() if now is None else now
    stored = await store.tokens.find(hash_token(token))
    if stored is None or not stored.usable(now):
        return None
    try:
        session = stored.created_by == SESSION_CREATOR
        principal = Principal(
            name=stored.name, scopes=parse_scopes(stored.scopes),
            id=(stored.creator_id or stored.id) if session else stored.id,
            expires=stored.expires, token_id=stored.id, session=session)
    except ValueError:
        log.warning("API token %r has malformed scopes; refusing it", stored.name)
        return None
    if stored.last_used is None or stored.last_used < now - LAST_USED_STEP_S:
        await store.tokens.touch(stored.id, now)
    return principal


def admin_token_file(config: AppConfig) -> Path:
    return Path(config.DATA_DIR) / ADMIN_TOKEN_FILE


async def bootstrap_admin_token(store: Store, config: AppConfig) -> str | None:
    """On first start (no token stored yet) create an admin token for every namespace,
    write it to DATA_DIR/admin-token and return it."""
    if await store.tokens.any_stored():
        return None
    token = await create_token(store, "admin", {"*": "admin"})
    write_private(admin_token_file(config), token + "\n")
    return token


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "authentication required: send 'Authorization: Bearer <token>'",
            "invalid_token",
            {"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _invalid() -> ApiError:
    # the same words whether the token never existed, expired or was revoked
    return ApiError(401, "the API token is not valid", "invalid_token",
                    {"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    deps = request.app.state.deps
    store: Store = deps.store
    throttle: FailedAuthThrottle = deps.auth_throttle
    client = audit.client_address(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        raise ApiError(
            429, "too many failed authentications from this address; try again in "
            f"{wait} s", "too_many_failures", {"Retry-After": str(wait)})
    principal = await lookup_token(store, _bearer(request))
    if principal is None:
        throttle.failed(client)
        await audit.record(request, audit.UNKNOWN_ACTOR, audit.SIGN_IN_FAILED,
                           details={"method": "token", "route": request.url.path})
        raise _invalid()
    return principal


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: a token holding `role` (or more) on the route's {namespace}, or, for
    routes without one, on some namespace."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        namespace = request.path_params.get("namespace")
        if namespace is None:
            if not principal.allows_any(role):
                raise ApiError(
                    403, f"this token has no {role.name.lower()} scope", "insufficient_scope"
                )
        elif not principal.allows(namespace, role):
            raise ApiError(
                403,
                f"this token lacks {role.name.lower()} access to namespace {namespace!r}",
                "insufficient_scope",
            )
        return principal

    return dependency
