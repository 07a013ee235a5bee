"""The log archive: one compressed object per finished build's log.

The object is gzip'd JSON Lines, one line per entry in order, each line the entry as the
API returns it (`{"message", "data", "type"?}`, `LogEntry.as_api`): entry N of the log is
line N of the object. Its key is `PREFIX<build id>.jsonl.gz`, in a directory (default
DATA_DIR/logarchive/) or an S3-compatible bucket (boto3, every call in a thread).

An object is immutable once written: it is written whole (a directory's through a
temporary file and a rename, S3's in one PUT), then confirmed by its size before the
database lets go of the rows (store/log_archiving.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from slipway.store.errors import ArchiveUnavailable
from slipway.store.records import LogEntry

__all__ = ["ArchiveUnavailable", "DirectoryStorage", "LogArchive", "S3Storage"]

SUFFIX = ".jsonl.gz"
# entries of archived logs kept decoded in memory: reading a long log page by page would
# otherwise decompress the whole object once per page
CACHED_ENTRIES = 200_000


def encode_log(entries: Sequence[LogEntry]) -> bytes:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    text = "".join(dumps(e.as_api()) + "\n" for e in entries)
    # level 6: a build log compresses ~10x; the highest levels cost 3x the time for ~2% more
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def decode_log(blob: bytes) -> list[LogEntry]:
    loads = json.loads
    entries = []
    for line in gzip.decompress(blob).splitlines():
        item = loads(line)
        entries.append(LogEntry(item["message"], item.get("type"), item.get("data") or {}))
    return entries


class ArchiveStorage(Protocol):
    """Where archived objects are kept, by key."""

    def describe(self) -> str:
        """Where it is, for messages (no credentials)."""

    async def put(self, key: str, blob: bytes) -> int:
        """Write the object whole; the size the storage now reports for it."""

    async def get(self, key: str) -> bytes | None:
        """The object, or None when there is none."""

    async def delete(self, key: str) -> int:
        """Remove it; the bytes it took (0: it was not there)."""

    async def size(self, key: str) -> int:
        """The object's size (0: there is none)."""


class DirectoryStorage:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"directory {self.directory}"

    def _path(self, key: str) -> Path:
        return self.directory / key

    def _put(self, key: str, blob: bytes) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        with open(partial, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rows it replaces are deleted
        os.replace(partial, path)
        return path.stat().st_size

    def _get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _delete(self, key: str) -> int:
        path = self._path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def _size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return 0

    async def put(self, key: str, blob: bytes) -> int:
        return await _io(self, "write", key, self._put, key, blob)

    async def get(self, key: str) -> bytes | None:
        return await _io(self, "read", key, self._get, key)

    async def delete(self, key: str) -> int:
        return await _io(self, "delete", key, self._delete, key)

    async def size(self, key: str) -> int:
        return await _io(self, "look at", key, self._size, key)


class S3Storage:
    """An S3-compatible bucket. boto3 is blocking: each call runs in a thread."""

    def __init__(self, *, bucket: str, endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        args: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region}
        if access_key and secret_key:
            args.update(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        self.client = boto3.session.Session().client("s3", **args)

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"bucket {self.bucket!r}{where}"

    def _put(self, key: str, blob: bytes) -> int:
        # stored as the gzip file it is (no Content-Encoding: an HTTP client in between
        # must not unpack it)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=blob,
                               ContentType="application/gzip")
        head = self.client.head_object(Bucket=self.bucket, Key=key)
        return int(head["ContentLength"])

    def _get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    def _size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return 0
            raise
        return int(head["ContentLength"])

    def _delete(self, key: str) -> int:
        size = self._size(key)
        if size:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return size

    async def put(self, key: str, blob: bytes) -> int:
        return await _io(self, "write", key, self._put, key, blob)

    async def get(self, key: str) -> bytes | None:
        return await _io(self, "read", key, self._get, key)

    async def delete(self, key: str) -> int:
        return await _io(self, "delete", key, self._delete, key)

    async def size(self, key: str) -> int:
        return await _io(self, "look at", key, self._size, key)


async def _io(storage: ArchiveStorage, verb: str, key: str, call: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(call, *args)
    except Exception as exc:
        # boto3's and the OS's messages name the bucket or path, never the keys
        raise ArchiveUnavailable(
            f"log archive ({storage.describe()}): could not {verb} {key}: "
            f"{type(exc).__name__}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


class LogArchive:
    """Archived logs by build id, in `storage` under `prefix`, with the recently read ones
    decoded in memory."""

    def __init__(self, storage: ArchiveStorage, prefix: str = "") -> None:
        self.storage = storage
        self.prefix = prefix
        self._cache: OrderedDict[str, list[LogEntry]] = OrderedDict()
        self._cached_entries = 0

    def key(self, build_id: str) -> str:
        return f"{self.prefix}{build_id}{SUFFIX}"

    def describe(self) -> str:
        return self.storage.describe()

    async def write(self, build_id: str, entries: Sequence[LogEntry]) -> int:
        """Write the log's object; its size. ArchiveUnavailable when it could not be
        written whole."""
        blob = encode_log(entries)
        size = await self.storage.put(self.key(build_id), blob)
        if size != len(blob):
            raise ArchiveUnavailable(
                f"log archive ({self.describe()}): {self.key(build_id)} holds {size} bytes "
                f"after writing {len(blob)}")
        return size

    async def read(self, build_id: str) -> list[LogEntry]:
        """Every entry of the archived log. ArchiveUnavailable when the object cannot be
        read (or is missing: the build row says it was archived)."""
        cached = self._cache.get(build_id)
        if cached is not None:
            self._cache.move_to_end(build_id)
            return cached
        blob = await self.storage.get(self.key(build_id))
        if blob is None:
            raise ArchiveUnavailable(
                f"log archive ({self.describe()}): the archived log of build {build_id} "
                f"({self.key(build_id)}) is missing")
        entries = await asyncio.to_thread(decode_log, blob)
        self._remember(build_id, entries)
        return entries

    async def size(self, build_id: str) -> int:
        return await self.storage.size(self.key(build_id))

    async def delete(self, build_id: str) -> int:
        """Remove the log's object; the bytes it took."""
        self._forget(build_id)
        return await self.storage.delete(self.key(build_id))

    def _remember(self, build_id: str, entries: list[LogEntry]) -> None:
        if len(entries) > CACHED_ENTRIES:
            return
        self._cache[build_id] = entries
        self._cached_entries += len(entries)
        while self._cached_entries > CACHED_ENTRIES:
            _, evicted = self._cache.popitem(last=False)
            self._cached_entries -= len(evicted)

    def _forget(self, build_id: str) -> None:
        evicted = self._cache.pop(build_id, None)
        if evicted is not None:
            self._cached_entries -= len(evicted)
