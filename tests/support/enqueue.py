"""Builds entered straight into the store and queue, as an admitted submit leaves them:
the tests' builds name registries ("r", "r:5000") that no test server's admission allows,
and a test of the manager is not a test of the admission rules (tests/manager/test_admission.py)."""

from __future__ import annotations

from slipway.manager.admission import store_new_build
from slipway.manager.control import BuildControl
from slipway.store.interfaces import Store
from slipway.store.records import BuildRecord, NewBuild


async def enqueue(control: BuildControl, new: NewBuild) -> BuildRecord:
    """Store and queue `new` and wake the managers, without the admission rules."""
    record = await store_new_build(control.store, new)
    await control.wake_managers()
    return record


async def record_and_queue(store: Store, new: NewBuild) -> BuildRecord:
    """The record and its queue item in one transaction, no log entry (the store's tests
    count every log entry they write)."""
    async with store.write() as conn:
        record = await store.builds.create(conn, new)
        await store.queue.put(conn, record.id, new.namespace, f"{new.namespace}/{new.repository}",
                              retries_remaining=record.retries_remaining)
    return record
