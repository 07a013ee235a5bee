"""Uploaded build contexts: files in DATA_DIR/uploads/, their records in the store
(`Store.uploads`)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from slipway.store.interfaces import Store
from slipway.store.records import Upload

__all__ = ["TooLarge", "Upload", "create_upload", "get_upload", "receive", "upload_dir"]


class TooLarge(Exception):
    pass


def upload_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "uploads"


async def create_upload(store: Store, mime_type: str, namespace: str | None) -> str:
    return await store.uploads.create(mime_type, namespace)


async def get_upload(store: Store, file_id: str) -> Upload | None:
    return await store.uploads.get(file_id)


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
    await store.uploads.received(file_id, final, size)
    return size
