"""Reads across many builds, for listings and the manager's state at a glance: the
repositories that have builds, workers running per executor, queue depth per namespace,
recent failed attempts grouped by why they failed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, func, or_, select, tuple_

from slipway.domain.phases import ACTIVE_PHASES, UNDER_WAY_PHASES
from slipway.domain.results import AttemptEnd
from slipway.store.builds import _record
from slipway.store.database import Database
from slipway.store.records import FailureGroup, NamespaceQueue, RepositorySummary
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import build_queue as q
from slipway.store.schema import builds as b

# phases in which a build holds a worker (or one is being started for it)
WORKER_PHASES = tuple(sorted(UNDER_WAY_PHASES))
NON_FINAL = tuple(sorted(ACTIVE_PHASES))
# attempt outcomes that are not failures
_NOT_FAILED = {AttemptEnd.COMPLETED.value, AttemptEnd.CANCELLED.value}
# failed builds read for the failure summary, at most (the newest)
FAILURE_SCAN_LIMIT = 5000
# failed attempts listed per reason: the manager page lists the newest builds that failed
# by their own error one by one (each has its own Dockerfile mistake to read)
RECENT_PER_REASON = 10


def _in_namespaces(column: Any, namespaces: Sequence[str] | None) -> Any:
    """No filter for None (every namespace); else only those listed."""
    return True if namespaces is None else column.in_(list(namespaces))


# The statements, apart so that tests/store/test_store_overview_indexes.py can EXPLAIN them:
# each has an index of schema.py (migration 0006) to read.

def repositories_statement(namespaces: Sequence[str] | None, limit: int) -> Any:
    """Per repository: builds, builds still going, the newest build's start; read from
    ix_builds_repo_started_phase alone."""
    active = func.sum(case((b.c.phase.in_([p.value for p in NON_FINAL]), 1), else_=0))
    return (
        select(b.c.namespace, b.c.repository, func.count().label("n"),
               active.label("active"), func.max(b.c.started).label("last"))
        .where(_in_namespaces(b.c.namespace, namespaces))
        .group_by(b.c.namespace, b.c.repository)
        .order_by(func.max(b.c.started).desc())
        .limit(limit)
    )


def workers_statement() -> Any:
    """Builds holding a worker per executor (ix_builds_phase_executor)."""
    return (
        select(b.c.executor, func.count())
        .where(b.c.phase.in_([p.value for p in WORKER_PHASES]))
        .group_by(b.c.executor)
    )


def queue_statement(namespaces: Sequence[str] | None, now: float) -> Any:
    """Per namespace: items leased, waiting to be retried, all (ix_queue_namespace)."""
    running = and_(q.c.available.is_(False), q.c.processing_expires > now)
    retrying = and_(q.c.available.is_(True), q.c.available_after > now)

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    return (
        select(q.c.namespace, count(running), count(retrying), func.count())
        .where(_in_namespaces(q.c.namespace, namespaces))
        .group_by(q.c.namespace)
        .order_by(q.c.namespace)
    )


def failures_statement(since: float, namespaces: Sequence[str] | None) -> Any:
    """Builds ended since `since` (ix_builds_completed) or still going
    (ix_builds_phase_executor), the newest first."""
    return (
        select(b.c.id, b.c.namespace, b.c.repository, b.c.phase, b.c.error, b.c.attempts)
        .where(
            or_(b.c.completed >= since, b.c.phase.in_([p.value for p in NON_FINAL])),
            _in_namespaces(b.c.namespace, namespaces),
        )
        .order_by(b.c.started.desc())
        .limit(FAILURE_SCAN_LIMIT)
    )


class BuildOverview:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def repositories(
        self, namespaces: Sequence[str] | None, *, limit: int = 500
    ) -> list[RepositorySummary]:
        """Repositories with builds (in `namespaces`, or all for None), the most recently
        built first, each with its newest build."""
        async with self.db.read() as conn:
            groups = (await conn.execute(repositories_statement(namespaces, limit))).all()
            if not groups:
                return []
            newest = await conn.execute(
                select(b).where(tuple_(b.c.namespace, b.c.repository, b.c.started).in_(
                    [(g.namespace, g.repository, g.last) for g in groups]))
            )
            last = {(r.namespace, r.repository): _record(r._mapping) for r in newest.all()}
        return [
            RepositorySummary(g.namespace, g.repository, int(g.n), int(g.active or 0),
                              last.get((g.namespace, g.repository)))
            for g in groups
        ]

    @rerun_if_connection_lost
    async def workers_by_executor(self) -> dict[str | None, int]:
        """Builds holding a worker, by the executor that started it (None: not known yet)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(workers_statement())).all()
        return {executor: int(n) for executor, n in rows}

    @rerun_if_connection_lost
    async def queue_by_namespace(self, namespaces: Sequence[str] | None) -> list[NamespaceQueue]:
        async with self.db.read() as conn:
            rows = (await conn.execute(queue_statement(namespaces, time.time()))).all()
        return [
            NamespaceQueue(ns, int(total) - int(run or 0) - int(retry or 0), int(retry or 0),
                           int(run or 0))
            for ns, run, retry, total in rows
        ]

    @rerun_if_connection_lost
    async def recent_failures(
        self, since: float, namespaces: Sequence[str] | None
    ) -> list[FailureGroup]:
        """Attempts that failed since `since`, grouped by outcome, the most frequent first,
        each group with its newest attempts. Read from builds that ended since then and
        builds still going (a retried attempt failed on those)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(failures_statement(since, namespaces))).all()
        groups: dict[str, FailureGroup] = {}
        for row in rows:
            for attempt in row.attempts or []:
                outcome = attempt.get("outcome")
                ended = attempt.get("ended")
                if not outcome or outcome in _NOT_FAILED or not ended or ended < since:
                    continue
                group = groups.setdefault(outcome, FailureGroup(outcome))
                group.count += 1
                group.executors[attempt.get("executor") or "unknown"] += 1
                failed = {
                    "id": row.id, "namespace": row.namespace, "repository": row.repository,
                    "phase": row.phase, "error": row.error, "attempt": attempt.get("attempt"),
                    "executor": attempt.get("executor"), "ended": float(ended),
                }
                group.recent.append(failed)
                if ended >= group.last:
                    group.last = float(ended)
                    group.example = {k: v for k, v in failed.items()
                                     if k not in ("executor", "ended")}
        for group in groups.values():
            # rows come newest started first; an attempt's end may order them otherwise
            group.recent.sort(key=lambda f: -f["ended"])
            del group.recent[RECENT_PER_REASON:]
        return sorted(groups.values(), key=lambda g: (-g.count, -g.last))
