"""Uploaded build contexts in SQL: one row each, its file (once received) named there; and
their clean-up once their builds are done with them.

Receiving the file itself is `api/uploads.py`'s."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select, update

from slipway.store.database import Database
from slipway.store.records import Upload
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import builds as b
from slipway.store.schema import uploads


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def create(self, mime_type: str, namespace: str | None) -> str:
        """A new upload, no file yet; its file id."""
        file_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await conn.execute(
                insert(uploads).values(
                    file_id=file_id, mime_type=mime_type, namespace=namespace,
                    created=time.time(),
                )
            )
        return file_id

    @rerun_if_connection_lost
    async def get(self, file_id: str) -> Upload | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(uploads).where(uploads.c.file_id == file_id))).first()
        if row is None:
            return None
        return Upload(row.file_id, row.mime_type, Path(row.path) if row.path else None, row.size)

    @rerun_if_connection_lost
    async def received(self, file_id: str, path: Path, size: int) -> None:
        """The upload's file is in, at `path`, `size` bytes."""
        async with self.db.write() as conn:
            await conn.execute(
                update(uploads).where(uploads.c.file_id == file_id)
                .values(path=str(path), size=size)
            )


# an upload no build names is kept this long (the CLI uploads, then submits)
UNUSED_UPLOAD_SECONDS = 86400.0


@dataclass(frozen=True)
class ContextToDelete:
    file_id: str
    path: Path | None
    size: int


class ContextCleanup:
    """Uploaded contexts whose builds have all ended more than `grace` seconds ago (kept
    that long for "build again", which reuses the upload), and uploads no build names a
    day after they were made: their file and their row go. "Build again" of such a build
    is then refused by the admission, saying its context is no longer on this server."""

    def __init__(self, db: Database, *, grace: float, batch_size: int) -> None:
        self.db = db
        self.grace = grace
        self.batch_size = batch_size

    def _done_with(self, now: float) -> Select[Any]:
        named = select(b.c.id).where(b.c.resource_key == uploads.c.file_id)
        still_needed = named.where(or_(b.c.completed.is_(None),
                                       b.c.completed > now - self.grace))
        return select(uploads.c.file_id, uploads.c.path, uploads.c.size).where(
            ~still_needed.exists(),
            or_(named.exists(), uploads.c.created < now - UNUSED_UPLOAD_SECONDS),
        )

    async def due(self, now: float, limit: int | None = None) -> list[ContextToDelete]:
        stmt = self._done_with(now)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [ContextToDelete(str(f), Path(p) if p else None, int(n or 0))
                for f, p, n in rows]

    async def run(self, now: float) -> tuple[int, int]:
        """Delete them; (contexts, bytes) removed."""
        count = freed = 0
        while batch := await self.due(now, self.batch_size):
            for context in batch:
                if context.path is not None:
                    await asyncio.to_thread(context.path.unlink, missing_ok=True)
                    freed += context.size
            async with self.db.write() as conn:
                await conn.execute(delete(uploads).where(
                    uploads.c.file_id.in_([c.file_id for c in batch])))
            count += len(batch)
            if len(batch) < self.batch_size:
                break
        return count, freed
