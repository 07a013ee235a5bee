"""Uploaded build contexts in SQL: one row each, its file (once received) named there.

Receiving the file itself is `api/uploads.py`'s."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select, update

from slipway.store.database import Database
from slipway.store.records import Upload
from slipway.store.rerun import rerun_if_connection_lost
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
