"""API tokens in SQL: their sha256 hashes, names, namespace scopes and lifetimes (never a
token).

What a token means (roles, hashing, who may grant what) is `api/auth.py`'s and
`api/token_grants.py`'s. Every request reads its token's row (`find`): a revoked or
expired token is refused by every manager at once, as there is no cache to outlive it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from slipway.store.database import Database
from slipway.store.records import LAST_USED_STEP_S, StoredToken
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import api_tokens as t

_COLUMNS = (t.c.id, t.c.name, t.c.scopes, t.c.created_by, t.c.creator_id, t.c.created,
            t.c.expires, t.c.revoked, t.c.last_used)


def _stored(row: Any) -> StoredToken:
    return StoredToken(name=row.name, scopes=dict(row.scopes or {}), id=row.id or "",
                       created_by=row.created_by, creator_id=row.creator_id,
                       created=row.created, expires=row.expires,
                       revoked=row.revoked, last_used=row.last_used)


class ApiTokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def add(self, token_hash: str, name: str, scopes: Mapping[str, str], *,
                  created_by: str | None = None, creator_id: str | None = None,
                  expires: float | None = None) -> StoredToken:
        token_id = str(uuid.uuid4())
        created = time.time()
        async with self.db.write() as conn:
            await conn.execute(
                insert(t).values(
                    token_hash=token_hash, name=name, scopes=dict(scopes), created=created,
                    id=token_id, created_by=created_by, creator_id=creator_id,
                    expires=expires,
                )
            )
        return StoredToken(name=name, scopes=dict(scopes), id=token_id,
                           created_by=created_by, creator_id=creator_id, created=created,
                           expires=expires)

    @rerun_if_connection_lost
    async def find(self, token_hash: str) -> StoredToken | None:
        async with self.db.lookup() as conn:  # every request's: one row by key
            row = (await conn.execute(select(*_COLUMNS).where(t.c.token_hash == token_hash))
                   ).first()
        return None if row is None else _stored(row)

    @rerun_if_connection_lost
    async def touch(self, token_id: str, now: float) -> None:
        """Note a use (`last_used`), unless one was noted less than a minute ago."""
        async with self.db.write() as conn:
            await conn.execute(
                update(t).where(t.c.id == token_id,
                                or_(t.c.last_used.is_(None),
                                    t.c.last_used < now - LAST_USED_STEP_S))
                .values(last_used=now))

    @rerun_if_connection_lost
    async def list(self) -> list[StoredToken]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(*_COLUMNS).order_by(t.c.created))).all()
        return [_stored(row) for row in rows]

    @rerun_if_connection_lost
    async def get(self, token_id: str) -> StoredToken | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(t.c.id == token_id))).first()
        return None if row is None else _stored(row)

    @rerun_if_connection_lost
    async def revoke(self, token_id: str, now: float) -> bool:
        """Revoke it (kept, listed as revoked); False when there is no such token or it
        was revoked already."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(t).where(t.c.id == token_id, t.c.revoked.is_(None))
                .values(revoked=now))
        return bool(result.rowcount)

    @rerun_if_connection_lost
    async def any_stored(self) -> bool:
        async with self.db.read() as conn:
            return bool(await conn.scalar(select(func.count()).select_from(t)))
