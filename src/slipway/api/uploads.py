"""Uploaded build contexts: files in DATA_DIR/uploads/, their records in the store
(`Store.uploads`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from slipway.api.data_dir_room import disk_full_message, is_disk_full
from slipway.store.errors import StoreUnavailable
from slipway.store.interfaces import Store
from slipway.store.records import Upload

__all__ = ["DiskFull", "TooLarge", "Upload", "create_upload", "get_upload", "receive",
           "upload_dir"]


class TooLarge(Exception):
    pass


class DiskFull(Exception):
    """DATA_DIR had no room for the upload; nothing of it was kept."""


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
    file is removed and TooLarge raised, and when DATA_DIR fills up DiskFull. Returns the
    size."""
    try:
        final, size = await _write(upload_dir(data_dir), file_id, body, max_bytes)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFull(disk_full_message(
            data_dir, "the upload did not fit and was not kept")) from None
    try:
        await store.uploads.received(file_id, final, size)
    except BaseException as exc:
        # not recorded as received: the file would be space no build can use (unless the
        # record's commit may have gone through, when a build may use it)
        if not (isinstance(exc, StoreUnavailable) and exc.commit_unknown):
            await asyncio.to_thread(final.unlink, missing_ok=True)
        raise
    return size


async def _write(
    directory: Path, file_id: str, body: AsyncIterator[bytes], max_bytes: int
) -> tuple[Path, int]:
    """The upload in its final place, or (whatever stopped it) nothing of it left."""
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
        with contextlib.suppress(OSError):  # a full disk fails the close's flush too
            fh.close()
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    return final, size
