"""The audit log in SQL: rows are added (`record`), read by filter (`query`, oldest
first, a page at a time) and deleted only by retention (`delete_before`,
RETENTION.AUDIT_DAYS). What is recorded, and that it holds no secret, is
`api/audit.py`'s."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select

from slipway.store.database import Database
from slipway.store.log_rows_removal import yield_after
from slipway.store.records import AuditEntry, AuditQuery
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import audit_log as a


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(id=row.id, at=row.at, actor=row.actor, action=row.action,
                      namespace=row.namespace, target=row.target, source=row.source,
                      details=dict(row.details or {}))


def _where(q: AuditQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [a.c.id > q.after_id]
    if q.namespace is not None:
        where.append(a.c.namespace == q.namespace)
    if q.namespaces is not None:
        where.append(a.c.namespace.in_(sorted(q.namespaces)))
    if q.actor is not None:
        where.append(a.c.actor == q.actor)
    if q.action is not None:
        where.append(a.c.action == q.action)
    if q.since is not None:
        where.append(a.c.at >= q.since)
    if q.until is not None:
        where.append(a.c.at < q.until)
    return where


class AuditLogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @rerun_if_connection_lost
    async def record(self, entry: AuditEntry) -> None:
        async with self.db.write() as conn:
            await conn.execute(insert(a).values(
                at=entry.at, actor=entry.actor, action=entry.action,
                namespace=entry.namespace, target=entry.target, source=entry.source,
                details=dict(entry.details)))

    @rerun_if_connection_lost
    async def query(self, q: AuditQuery) -> list[AuditEntry]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(a).where(*_where(q)).order_by(a.c.id).limit(q.limit))).all()
        return [_entry(row) for row in rows]

    @rerun_if_connection_lost
    async def count_before(self, cutoff: float) -> int:
        async with self.db.read() as conn:
            return int(await conn.scalar(
                select(func.count()).select_from(a).where(a.c.at < cutoff)) or 0)

    async def delete_before(self, cutoff: float, *, batch_size: int = 500,
                            pause: float = 0.005) -> int:
        """Delete the entries older than `cutoff` (UNIX time), `batch_size` a
        transaction with a pause between (store/log_rows_removal.py); how many went."""
        deleted = 0
        while True:
            started = time.monotonic()
            batch = await self._delete_batch(cutoff, batch_size)
            deleted += batch
            if batch < batch_size:
                return deleted
            await yield_after(started, pause)

    @rerun_if_connection_lost
    async def _delete_batch(self, cutoff: float, batch_size: int) -> int:
        async with self.db.write() as conn:
            ids = select(a.c.id).where(a.c.at < cutoff).order_by(a.c.id).limit(batch_size)
            result = await conn.execute(delete(a).where(a.c.id.in_(ids.scalar_subquery())))
        return int(result.rowcount or 0)
