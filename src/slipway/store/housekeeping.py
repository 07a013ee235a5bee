"""One housekeeping pass over slipway's own tables: archive the logs of ended builds,
delete what retention says has expired, delete the uploaded contexts no build needs any
more and the audit log's entries older than RETENTION.AUDIT_DAYS, and give SQLite's
freed pages back (docs/data-lifecycle.md). `slipway gc` runs one by hand (`--dry-run`:
only counted); the manager runs one every RETENTION.INTERVAL
(backends/data_lifecycle.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from slipway.store.audit import AuditLogStore
from slipway.store.database import Database
from slipway.store.database_size import database_size, give_back_free_pages
from slipway.store.log_archive import LogArchive
from slipway.store.log_archiving import LogArchiver
from slipway.store.logs import BuildLogs
from slipway.store.records import HousekeepingReport
from slipway.store.retention import DAY, Retention, RetentionPolicy
from slipway.store.uploads import ContextCleanup


@dataclass(frozen=True)
class HousekeepingPolicy:
    archive_logs: bool = True
    archive_after: float = 60.0
    retention: bool = True
    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    context_grace: float = 3600.0
    batch_size: int = 500
    pause: float = 0.005
    audit_days: float | None = 365.0  # None: the audit log is kept forever


class Housekeeping:
    def __init__(self, db: Database, logs: BuildLogs, archive: LogArchive | None,
                 policy: HousekeepingPolicy) -> None:
        self.db = db
        self.archive = archive
        self.policy = policy
        self.archiver = LogArchiver(db, logs, archive, after=policy.archive_after,
                                    batch_size=policy.batch_size, pause=policy.pause
                                    ) if archive is not None and policy.archive_logs else None
        self.retention = Retention(db, archive, policy.policy, batch_size=policy.batch_size,
                                   pause=policy.pause) if policy.retention else None
        self.audit = AuditLogStore(db) if policy.retention else None
        self.contexts = ContextCleanup(db, grace=policy.context_grace,
                                       batch_size=policy.batch_size
                                       ) if policy.retention else None

    async def run(self, *, dry_run: bool = False, now: float | None = None
                  ) -> HousekeepingReport:
        """One pass (`now`: the time it judges ages by; default the clock)."""
        now = time.time() if now is None else now
        if dry_run:
            return await self._count(now)
        report = HousekeepingReport()
        if self.retention is not None:
            # first: no point archiving a log that is about to be deleted
            deleted = await self.retention.run(now)
            report.builds_deleted = deleted.builds
            report.log_lines_deleted = deleted.log_lines
            report.archives_deleted = deleted.archives
            report.archive_bytes_deleted = deleted.archive_bytes
        if self.archiver is not None:
            archived = await self.archiver.run(now=now)
            report.logs_archived = archived.logs
            report.log_lines_archived = archived.lines
            report.archive_bytes_written = archived.bytes_written
            report.logs_left = archived.failed
        if self.contexts is not None:
            report.contexts_deleted, report.context_bytes_deleted = await self.contexts.run(now)
        if self.audit is not None and self.policy.audit_days is not None:
            report.audit_entries_deleted = await self.audit.delete_before(
                now - self.policy.audit_days * DAY, batch_size=self.policy.batch_size,
                pause=self.policy.pause)
        if report.builds_deleted or report.logs_archived:
            report.database_bytes_freed = await give_back_free_pages(self.db)
        report.database_size = await database_size(self.db)
        return report

    async def _count(self, now: float) -> HousekeepingReport:
        report = HousekeepingReport(dry_run=True)
        expiring: set[str] = set()
        if self.retention is not None:
            expired = await self.retention.expired(now)
            expiring = {x.id for x in expired}
            report.builds_deleted = len(expired)
            report.log_lines_deleted = sum(x.log_count for x in expired if not x.archived)
            report.archives_deleted = sum(1 for x in expired if x.archived)
            if self.archive is not None:
                for build in (x for x in expired if x.archived):
                    report.archive_bytes_deleted += await self.archive.size(build.id)
        if self.archiver is not None:
            due = [(i, n) for i, n in await self.archiver.due(now) if i not in expiring]
            report.logs_archived = len(due)
            report.log_lines_archived = sum(n for _, n in due)
        if self.contexts is not None:
            contexts = await self.contexts.due(now)
            report.contexts_deleted = len(contexts)
            report.context_bytes_deleted = sum(c.size for c in contexts)
        if self.audit is not None and self.policy.audit_days is not None:
            report.audit_entries_deleted = await self.audit.count_before(
                now - self.policy.audit_days * DAY)
        report.database_size = await database_size(self.db)
        return report
