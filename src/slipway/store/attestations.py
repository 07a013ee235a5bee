"""A build's signatures and attestations as its worker reported them with COMPLETE
(docs/signing.md): one JSON document per build, served by the API."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, select

from slipway.store.database import Database
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import build_attestations as a


class AttestationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, build_id: str, document: dict[str, Any]) -> None:
        """Keep `document` (a build run again keeps its last attempt's)."""
        text = json.dumps(document, separators=(",", ":"))
        async with self.db.write() as conn:
            await conn.execute(delete(a).where(a.c.build_id == build_id))
            await conn.execute(a.insert().values(build_id=build_id, document=text,
                                                 created=time.time()))

    @rerun_if_connection_lost
    async def get(self, build_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            text = await conn.scalar(select(a.c.document).where(a.c.build_id == build_id))
        if text is None:
            return None
        document: dict[str, Any] = json.loads(text)
        return document
