"""Retention: which build records are old enough to delete, and deleting them.

A build is deleted when all of these hold:
- it has ended (a final phase, `completed` set): a waiting or running build is never
  touched, however old;
- it ended longer ago than its namespace's age (`NAMESPACES`, else `DEFAULT_DAYS`; None:
  kept forever);
- at least `keep_last` newer builds (by start) of its repository exist: the newest
  `keep_last` of each repository are kept whatever their age.

With the record go its log (rows, or archived object), its trace, its queue item and
secrets if any are left. The archived object goes first, then the rows, so that a crash in between
leaves a record that the next pass deletes, never an object nobody points to."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    false,
    func,
    literal,
    or_,
    select,
)

from slipway.domain.phases import FINAL_PHASES
from slipway.store.database import Database
from slipway.store.log_archive import LogArchive
from slipway.store.log_rows_removal import delete_log_rows, yield_after
from slipway.store.schema import build_attestations, build_logs, build_queue, build_secrets
from slipway.store.schema import builds as b
from slipway.store.traces import BuildTraceStore

DAY = 86400.0
_FINAL = sorted(p.value for p in FINAL_PHASES)


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: float | None = 90
    namespaces: Mapping[str, float | None] = field(default_factory=dict)
    keep_last: int = 10


@dataclass(frozen=True)
class ExpiredBuild:
    id: str
    log_count: int
    archived: bool


@dataclass
class Deleted:
    builds: int = 0
    log_lines: int = 0  # rows of logs not archived
    archives: int = 0
    archive_bytes: int = 0


def expired_condition(policy: RetentionPolicy, now: float) -> ColumnElement[bool]:
    """The WHERE of builds past their namespace's age (ended ones only)."""
    ages = {ns: days for ns, days in policy.namespaces.items() if days is not None}
    forever = [ns for ns, days in policy.namespaces.items() if days is None]
    cutoffs = [now - days * DAY for days in ages.values()]
    if policy.default_days is not None:
        cutoffs.append(now - policy.default_days * DAY)
    if not cutoffs:
        return false()
    cutoff = case(
        {ns: literal(now - days * DAY) for ns, days in ages.items()},
        value=b.c.namespace,
        else_=literal(now - policy.default_days * DAY) if policy.default_days is not None
        else literal(None),
    ) if ages else literal(now - (policy.default_days or 0) * DAY)
    conditions = [
        b.c.completed.is_not(None),
        # the widest cutoff first, in a form the index on `completed` serves
        b.c.completed < max(cutoffs),
        b.c.completed < cutoff,
        b.c.phase.in_(_FINAL),
    ]
    if forever:
        conditions.append(b.c.namespace.not_in(forever))
    if policy.default_days is None:
        conditions.append(b.c.namespace.in_(list(ages)))
    return and_(*conditions)


def newer_builds_kept(keep_last: int) -> ColumnElement[bool]:
    """At least `keep_last` builds of the same repository started after this one (by
    start, then id: builds started in the same instant are still ordered): the
    keep_last-th newer one exists (an index range scan of about `keep_last` entries)."""
    if keep_last <= 0:
        return literal(True)
    newer = b.alias("newer")
    return (
        select(literal(1))
        .where(newer.c.namespace == b.c.namespace, newer.c.repository == b.c.repository,
               newer.c.started >= b.c.started,
               or_(newer.c.started > b.c.started, newer.c.id > b.c.id))
        .order_by(newer.c.started)
        .limit(1).offset(keep_last - 1)
        .exists()
    )


class Retention:
    def __init__(self, db: Database, archive: LogArchive | None, policy: RetentionPolicy,
                 *, batch_size: int, pause: float) -> None:
        self.db = db
        self.archive = archive
        self.policy = policy
        self.batch_size = batch_size
        self.pause = pause

    def _expired(self, now: float) -> Select[Any]:
        return (select(b.c.id, b.c.log_count, b.c.log_archived_at)
                .where(expired_condition(self.policy, now),
                       newer_builds_kept(self.policy.keep_last)))

    async def expired(self, now: float, limit: int | None = None) -> list[ExpiredBuild]:
        stmt = self._expired(now).order_by(b.c.completed)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [ExpiredBuild(str(i), int(n), a is not None) for i, n, a in rows]

    async def pending(self, now: float) -> tuple[int, int, int]:
        """(builds, log rows, archived logs) that a pass would delete now."""
        sub = self._expired(now).subquery()
        async with self.db.read() as conn:
            row = (await conn.execute(select(
                func.count(),
                func.coalesce(func.sum(case((sub.c.log_archived_at.is_(None),
                                             sub.c.log_count), else_=0)), 0),
                func.count(sub.c.log_archived_at)))).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def run(self, now: float) -> Deleted:
        """Delete the expired builds, `batch_size` at a time, a pause between batches."""
        done = Deleted()
        while batch := await self.expired(now, self.batch_size):
            before, started = done.builds, time.monotonic()
            await self.delete(batch, done)
            if len(batch) < self.batch_size or done.builds == before:
                break
            await yield_after(started, self.pause)
        return done

    async def delete(self, batch: list[ExpiredBuild], done: Deleted) -> None:
        for build in batch:
            if build.archived and self.archive is not None:
                size = await self.archive.delete(build.id)
                done.archives += 1 if size else 0
                done.archive_bytes += size
        in_table = [(x.id, x.log_count) for x in batch if not x.archived]
        done.log_lines += await delete_log_rows(
            self.db, in_table, batch_size=self.batch_size, pause=self.pause, whole=True)
        ids = [x.id for x in batch]
        async with self.db.write() as conn:
            # rows left of archived logs too (a crash between archiving and their delete)
            for build_id in (x.id for x in batch if x.archived):
                await conn.execute(delete(build_logs).where(build_logs.c.build_id == build_id))
            await conn.execute(delete(build_queue).where(build_queue.c.build_id.in_(ids)))
            await conn.execute(delete(build_secrets).where(build_secrets.c.build_id.in_(ids)))
            await conn.execute(delete(build_attestations).where(
                build_attestations.c.build_id.in_(ids)))
            await BuildTraceStore.delete(conn, ids)
            # final phase re-checked: a build is never deleted unless it has ended
            result = await conn.execute(delete(b).where(b.c.id.in_(ids),
                                                        b.c.phase.in_(_FINAL)))
            done.builds += result.rowcount or 0

