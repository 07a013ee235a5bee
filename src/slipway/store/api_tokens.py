"""API tokens in SQL: their sha256 hashes, names and namespace scopes (never a token).

What a token means (roles, hashing, the first admin token) is `api/auth.py`'s."""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import func, insert, select

from slipway.store.database import Database
from slipway.store.records import StoredToken
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import api_tokens


class ApiTokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def add(self, token_hash: str, name: str, scopes: Mapping[str, str]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                insert(api_tokens).values(
                    token_hash=token_hash, name=name, scopes=dict(scopes), created=time.time()
                )
            )

    @rerun_if_connection_lost
    async def find(self, token_hash: str) -> StoredToken | None:
        async with self.db.lookup() as conn:  # every request's: one row by key
            row = (
                await conn.execute(
                    select(api_tokens.c.name, api_tokens.c.scopes).where(
                        api_tokens.c.token_hash == token_hash
                    )
                )
            ).first()
        return None if row is None else StoredToken(row.name, dict(row.scopes or {}))

    @rerun_if_connection_lost
    async def any_stored(self) -> bool:
        async with self.db.read() as conn:
            return bool(await conn.scalar(select(func.count()).select_from(api_tokens)))
