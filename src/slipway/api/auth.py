"""API tokens: `Authorization: Bearer <token>`, stored as sha256 hashes with namespace
scopes `{namespace or "*": "read" | "write" | "admin"}` (admin > write > read)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import func, insert, select

from slipway.api.errors import ApiError
from slipway.store.facade import Store
from slipway.store.schema import api_tokens

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
    async with store.db.write() as conn:
        await conn.execute(
            insert(api_tokens).values(
                token_hash=hash_token(token),
                name=name,
                scopes={ns: role.lower() for ns, role in scopes.items()},
                created=time.time(),
            )
        )
    return token


async def lookup_token(store: Store, token: str) -> Principal | None:
    async with store.db.read() as conn:
        row = (
            await conn.execute(
                select(api_tokens.c.name, api_tokens.c.scopes).where(
                    api_tokens.c.token_hash == hash_token(token)
                )
            )
        ).first()
    if row is None:
        return None
    try:
        return Principal(name=row.name, scopes=parse_scopes(row.scopes or {}))
    except ValueError:
        log.warning("API token %r has malformed scopes; refusing it", row.name)
        return None


def credentials_path() -> Path:
    """`$XDG_CONFIG_HOME/slipway/cli.json`, where the CLI looks for server and token."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slipway" / "cli.json"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600, also when it already existed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


async def bootstrap_admin_token(store: Store, config: Any) -> str | None:
    """On first start (no token stored yet) create an admin token for every namespace,
    write it to DATA_DIR/admin-token and the CLI credentials file, and return it."""
    async with store.db.read() as conn:
        existing = await conn.scalar(select(func.count()).select_from(api_tokens))
    if existing:
        return None
    token = await create_token(store, "admin", {"*": "admin"})
    data_dir = Path(config.DATA_DIR)
    write_private(data_dir / ADMIN_TOKEN_FILE, token + "\n")
    server = str(config.PUBLIC_URL).rstrip("/")
    where = [str(data_dir / ADMIN_TOKEN_FILE)]
    try:
        creds = json.dumps({"server": server, "token": token}, indent=2)
        write_private(credentials_path(), creds)
        where.append(str(credentials_path()))
    except OSError as exc:  # e.g. a read-only home in a container: the CLI file is a nicety
        log.warning("could not write the CLI credentials file %s: %s", credentials_path(), exc)
    log.info("created the admin API token; it is in %s", " and ".join(where))
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
