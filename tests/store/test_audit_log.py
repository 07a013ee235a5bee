"""The audit log's store (store/audit.py) on SQLite and PostgreSQL: filters, pages in
the order recorded, and retention deleting exactly the entries older than AUDIT_DAYS
(a dry run counts them and changes nothing)."""

from __future__ import annotations

import time

from slipway.store.facade import SqlStore
from slipway.store.housekeeping import HousekeepingPolicy
from slipway.store.records import AuditEntry, AuditQuery

DAY = 86400.0


async def test_filters_pages_and_retention(store: SqlStore) -> None:
    now = time.time()
    entries = [
        AuditEntry(at=now - 400 * DAY, actor="old", action="build.start", namespace="a"),
        AuditEntry(at=now - 10 * DAY, actor="ann", action="build.start", namespace="a"),
        AuditEntry(at=now - 5 * DAY, actor="bob", action="build.cancel", namespace="b"),
        AuditEntry(at=now - 1, actor="ann", action="token.create", details={"name": "x"}),
    ]
    for entry in entries:
        await store.audit.record(entry)
    everything = await store.audit.query(AuditQuery())
    assert [e.actor for e in everything] == ["old", "ann", "bob", "ann"]
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert [e.action for e in await store.audit.query(AuditQuery(actor="ann"))] == [
        "build.start", "token.create"]
    assert [e.actor for e in await store.audit.query(AuditQuery(namespace="b"))] == ["bob"]
    assert [e.actor for e in await store.audit.query(
        AuditQuery(namespaces=frozenset({"a"})))] == ["old", "ann"]
    recent = await store.audit.query(AuditQuery(since=now - 7 * DAY, until=now - 2))
    assert [e.actor for e in recent] == ["bob"]
    first = await store.audit.query(AuditQuery(limit=2))
    rest = await store.audit.query(AuditQuery(after_id=first[-1].id, limit=2))
    assert [e.actor for e in first + rest] == ["old", "ann", "bob", "ann"]

    policy = HousekeepingPolicy(audit_days=365, batch_size=1, pause=0)
    dry = await store.housekeeping(policy).run(dry_run=True)
    assert dry.audit_entries_deleted == 1
    assert len(await store.audit.query(AuditQuery())) == 4
    report = await store.housekeeping(policy).run()
    assert report.audit_entries_deleted == 1
    assert [e.actor for e in await store.audit.query(AuditQuery())] == ["ann", "bob", "ann"]
    # batches of one: both go, one transaction each
    report = await store.housekeeping(HousekeepingPolicy(audit_days=6, batch_size=1,
                                                         pause=0)).run()
    assert report.audit_entries_deleted == 1
    kept = await store.housekeeping(HousekeepingPolicy(audit_days=None)).run()
    assert kept.audit_entries_deleted == 0
    assert [e.actor for e in await store.audit.query(AuditQuery())] == ["bob", "ann"]
