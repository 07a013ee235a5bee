"""Builds as retention and the log archive see them: made in a real store with the start,
end and phase a test gives, and a log of many entries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore
from slipway.store.log_archive import S3Storage
from slipway.store.records import LogEntry, NewBuild

DAY = 86400.0


def log_of(count: int) -> list[LogEntry]:
    """A log with every kind of entry: phases, commands, errors, plain output with data."""
    entries = [LogEntry("waiting", "phase")]
    for i in range(1, count):
        if i % 50 == 0:
            entries.append(LogEntry(f"STEP {i}: RUN make", "command"))
        elif i % 77 == 0:
            entries.append(LogEntry(f"warning {i}: ünïcode ✓", "error", {"code": i}))
        else:
            entries.append(LogEntry(f"line {i} of the build output"))
    return entries


async def make_build(
    store: SqlStore, namespace: str = "acme", repository: str = "web", *,
    phase: Phase = Phase.COMPLETE, age_days: float = 0.0, lines: int = 3,
    resource_key: str | None = None, now: float | None = None,
) -> str:
    """A build started and (if `phase` is final) ended `age_days` ago, with `lines`
    log entries."""
    now = time.time() if now is None else now
    async with store.write() as conn:
        record = await store.builds.create(
            conn, NewBuild(namespace, repository, ["latest"], "registry.example.com",
                           resource_key=resource_key,
                           archive_url=None if resource_key else "https://example.com/c.tgz"))
    await store.logs.append(record.id, log_of(lines))
    ended = now - age_days * DAY
    values: dict[str, Any] = {"phase": phase, "started": ended - 60}
    if phase.is_final:
        values["completed"] = ended
    async with store.write() as conn:
        await store.builds.update(conn, record.id, **values)
    return record.id


@contextmanager
def s3_bucket(name: str = "slipway-logs") -> Iterator[S3Storage]:
    """A bucket on a moto server, reached over HTTP by boto3 as a real one would be."""
    from support.moto_server import moto_server

    with moto_server() as url:
        storage = S3Storage(bucket=name, endpoint_url=url, region="us-east-1",
                            access_key="testing", secret_key="testing-secret")
        storage.client.create_bucket(Bucket=name)
        yield storage


def object_keys(storage: S3Storage) -> set[str]:
    listed = storage.client.list_objects_v2(Bucket=storage.bucket)
    return {item["Key"] for item in listed.get("Contents", [])}
