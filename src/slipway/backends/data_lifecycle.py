"""The data lifecycle of slipway's own tables, as configured: the log archive that
LOG_ARCHIVE names, the housekeeping policy RETENTION gives, and the background service
that runs a housekeeping pass every RETENTION.INTERVAL while the manager runs
(docs/data-lifecycle.md). Quay mode has none of it: Quay archives and expires its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from slipway import metrics
from slipway.config.models import AppConfig
from slipway.manager.background import finish_or_cancel
from slipway.secret import reveal
from slipway.store.housekeeping import Housekeeping, HousekeepingPolicy
from slipway.store.log_archive import DirectoryStorage, LogArchive, S3Storage
from slipway.store.records import HousekeepingReport
from slipway.store.retention import RetentionPolicy

log = logging.getLogger("slipway.housekeeping")

STOP_GRACE_SECONDS = 2.0


def log_archive_from_config(config: AppConfig) -> LogArchive:
    """LOG_ARCHIVE's bucket, or its directory (default DATA_DIR/ + LOG_ARCHIVE_PATH).
    Built even when archiving is off: logs archived before are still read from it."""
    settings = config.LOG_ARCHIVE
    prefix = settings.PREFIX if settings.PREFIX is not None else config.LOG_ARCHIVE_PATH
    if settings.BUCKET:
        storage = S3Storage(
            bucket=settings.BUCKET, endpoint_url=settings.ENDPOINT_URL,
            region=settings.REGION,
            access_key=reveal(settings.ACCESS_KEY), secret_key=reveal(settings.SECRET_KEY),
        )
        return LogArchive(storage, prefix.lstrip("/"))
    directory = settings.DIRECTORY or config.DATA_DIR / config.LOG_ARCHIVE_PATH.strip("/")
    # in a directory the prefix is the directory itself
    return LogArchive(DirectoryStorage(directory), "")


def housekeeping_policy(config: AppConfig) -> HousekeepingPolicy:
    retention = config.RETENTION
    return HousekeepingPolicy(
        archive_logs=config.LOG_ARCHIVE.ENABLED,
        archive_after=config.LOG_ARCHIVE.ARCHIVE_AFTER,
        retention=retention.ENABLED,
        policy=RetentionPolicy(default_days=retention.DEFAULT_DAYS,
                               namespaces=dict(retention.NAMESPACES),
                               keep_last=retention.KEEP_LAST),
        context_grace=retention.CONTEXT_GRACE,
        batch_size=retention.BATCH_SIZE,
        pause=retention.BATCH_PAUSE,
        audit_days=retention.AUDIT_DAYS,
    )


def count_in_metrics(report: HousekeepingReport) -> None:
    """A pass's report into the Prometheus metrics (metrics.py)."""
    removed = {"builds": report.builds_deleted, "log_lines": report.log_lines_deleted,
               "archived_logs": report.archives_deleted, "contexts": report.contexts_deleted,
               "audit_entries": report.audit_entries_deleted}
    for kind, count in removed.items():
        if count:
            metrics.GC_REMOVED.labels(kind).inc(count)
    reclaimed = {"archive": report.archive_bytes_deleted,
                 "contexts": report.context_bytes_deleted,
                 "database": report.database_bytes_freed}
    for kind, size in reclaimed.items():
        if size:
            metrics.GC_RECLAIMED_BYTES.labels(kind).inc(size)
    metrics.LOGS_ARCHIVED.inc(report.logs_archived)
    metrics.LOG_ARCHIVE_BYTES.inc(report.archive_bytes_written)
    metrics.LOG_ARCHIVE_FAILURES.inc(report.logs_left)
    metrics.DATABASE_SIZE.set(report.database_size)
    metrics.GC_LAST_PASS.set(time.time())


class HousekeepingService:
    """A pass at start and every `interval` seconds after the last one ended; a failed
    pass is logged and the next one tries again. Each pass works in small transactions
    with pauses between (store/housekeeping.py), beside the scheduler's writes."""

    def __init__(self, housekeeping: Housekeeping, interval: float) -> None:
        self.housekeeping = housekeeping
        self.interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            # between passes it ends at once; a pass under way is given a moment, then
            # cancelled: each of its batches is its own transaction, so what it did stays
            # done and the rest waits for the next start
            await finish_or_cancel(self._task, STOP_GRACE_SECONDS)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = await self.housekeeping.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping pass failed; the next one tries again")
            else:
                count_in_metrics(report)
                if report.builds_deleted or report.logs_archived or report.contexts_deleted:
                    log.info("housekeeping: %s", _summary(report))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stopping.wait()


def _summary(report: HousekeepingReport) -> str:
    return (f"{report.logs_archived} logs archived ({report.archive_bytes_written} bytes), "
            f"{report.builds_deleted} builds deleted, {report.archives_deleted} archived "
            f"logs deleted, {report.contexts_deleted} contexts deleted "
            f"({report.context_bytes_deleted} bytes), database {report.database_size} bytes")
