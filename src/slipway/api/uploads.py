"""Uploaded build contexts: rows in `uploads`, files in DATA_DIR/uploads/."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, update

from slipway.store.facade import Store
from slipway.store.schema import uploads


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upload:
    file_id: str
    mime_type: str
    path: Path | None
    size: int | None

    @property
    def complete(self) -> bool:
        return self.path is not None and self.size is not None


def upload_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "uploads"


async def create_upload(store: Store, mime_type: str, namespace: str | None) -> str:
    file_id = str(uuid.uuid4())
    async with store.db.write() as conn:
        await conn.execute(
            insert(uploads).values(
                file_id=file_id, mime_type=mime_type, namespace=namespace, created=time.time()
            )
        )
    return file_id


async def get_upload(store: Store, file_id: str) -> Upload | None:
    async with store.db.read() as conn:
        row = (await conn.execute(select(uploads).where(uploads.c.file_id == file_id))).first()
    if row is None:
        return None
    return Upload(row.file_id, row.mime_type, Path(row.path) if row.path else None, row.size)


async def receive(
    store: Store, data_dir: Path, file_id: str, body: AsyncIterator[bytes], max_bytes: int
) -> int:
    """Stream the body to disk, never holding it in memory; over `max_bytes` the partial
    file is removed and TooLarge raised. Returns the size."""
    directory = upload_dir(data_dir)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True, mode=0o700)
    final = directory / file_id
    partial = directory / f"{file_id}.{uuid.uuid4().hex}.part"
    size = 0
    fh = await asyncio.to_thread(open, partial, "wb")
    try:
        async for chunk in body:
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge
            await asyncio.to_thread(fh.write, chunk)
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, partial, final)
    except BaseException:
        fh.close()
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    async with store.db.write() as conn:
        await conn.execute(
            update(uploads).where(uploads.c.file_id == file_id).values(path=str(final), size=size)
        )
    return size
