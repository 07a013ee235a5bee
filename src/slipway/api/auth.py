"""API tokens: `Authorization: Bearer <token>`, stored as sha256 hashes with namespace
scopes `{namespace or "*": "read" | "write" | "admin"}` (admin > write > read)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from fastapi import Request

from slipway.api.errors import ApiError
from slipway.config.models import AppConfig
from slipway.private_files import write_private
from slipway.store.interfaces import Store

log = logging.getLogger(__name__)

TOKEN_PREFIX = "slw_"
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

    def role_for(self, namespace: str) -> Role | None:
        roles = [r for r in (self.scopes.get(namespace), self.scopes.get("*")) if r is not None]
        return max(roles) if roles else None

    def allows(self, namespace: str, role: Role) -> bool:
        have = self.role_for(namespace)
        return have is not None and have >= role

    def allows_any(self, role: Role) -> bool:
        return any(r >= role for r in self.scopes.values())


async def create_token(store: Store, name: str, scopes: Mapping[str, str]) -> str:
    """Mint a token, store its hash, return the token (shown once, never stored)."""
    parse_scopes(scopes)  # reject unknown roles before storing
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await store.tokens.add(hash_token(token), name,
                           {ns: role.lower() for ns, role in scopes.items()})
    return token


async def lookup_token(store: Store, token: str) -> Principal | None:
    stored = await store.tokens.find(hash_token(token))
    if stored is None:
        return None
    try:
        return Principal(name=stored.name, scopes=parse_scopes(stored.scopes))
    except ValueError:
        log.warning("API token %r has malformed scopes; refusing it", stored.name)
        return None


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


async def authenticate(request: Request) -> Principal:
    store: Store = request.app.state.deps.store
    principal = await lookup_token(store, _bearer(request))
    if principal is None:
        raise ApiError(
            401, "the API token is not valid", "invalid_token", {"WWW-Authenticate": "Bearer"}
        )
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
