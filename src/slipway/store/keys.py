"""Public signing keys shared through the database, so any manager verifies any token."""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from slipway.store.database import Database
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import signing_keys as k


class SigningKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def publish(self, kid: str, public_pem: str) -> None:
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        async with self.db.write() as conn:
            await conn.execute(
                insert(k)
                .values(kid=kid, public_pem=public_pem, created=time.time())
                .on_conflict_do_nothing(index_elements=["kid"])
            )

    @rerun_if_connection_lost
    async def get(self, kid: str) -> str | None:
        async with self.db.read() as conn:
            return await conn.scalar(
                select(k.c.public_pem).where(k.c.kid == kid, k.c.retired.is_(None))
            )

    @rerun_if_connection_lost
    async def retire(self, kid: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(k).where(k.c.kid == kid).values(retired=time.time()))
