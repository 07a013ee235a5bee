"""QUEUE_TTL: a build still waiting for its first attempt past its queue TTL ends, as
Cloud Build's `queueTtl` ends a build: `internalerror` with no tries left, which the API
shows as Quay's `expired` (api/serialize.py), its error saying how long it waited and what
to do.

The scheduler looks now and then (`QueueExpiry.look`): one indexed range read
(store/queue.py `due_to_expire`), nothing read when no build is due. Each due build then
goes in a transaction of its own: the queue item is removed only while it still waits
(a claim clears its start_by, so a build whose attempt was claimed meanwhile is left to
run) and the build moves `waiting` -> `internalerror` through the phase table.
Every manager looks; of two that find one build, one removes its item and moves it.
Quay mode's queue is Quay's: its `due_to_expire` finds nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slipway import metrics
from slipway.domain.build_limits import BuildLimit, queue_expired_message
from slipway.domain.phases import Phase
from slipway.manager.build_limits import queue_ttl_of
from slipway.manager.phase_log import phase_entry
from slipway.store.interfaces import Store
from slipway.store.records import LogEntry, QueueItem

log = logging.getLogger("slipway.manager")

# builds expired per read; a look reads at most MAX_BATCHES of them, and the next look
# takes the rest (a backlog of expiries never holds the scheduler for long)
EXPIRY_BATCH = 100
MAX_BATCHES = 10
# how often the scheduler looks, at most: a build expires this long after its TTL at worst
LOOK_EVERY_SECONDS = 5.0


class QueueExpiry:
    def __init__(self, store: Store[Any]) -> None:
        self._store = store
        self._next_look = 0.0

    def seconds_to_next_look(self, now: float) -> float:
        return max(0.0, self._next_look - now)

    async def look_if_due(self) -> int:
        """`look`, at most once per LOOK_EVERY_SECONDS; how many builds expired."""
        now = time.time()
        if now < self._next_look:
            return 0
        self._next_look = now + LOOK_EVERY_SECONDS
        return await self.look(now)

    async def look(self, now: float | None = None) -> int:
        """End the builds whose queue TTL has passed; how many."""
        now = time.time() if now is None else now
        expired = 0
        for _ in range(MAX_BATCHES):
            items = await self._store.queue.due_to_expire(now, EXPIRY_BATCH)
            for item in items:
                if await self._expire(item, now):
                    expired += 1
            if len(items) < EXPIRY_BATCH:
                break
        return expired

    async def _expire(self, item: QueueItem, now: float) -> bool:
        store = self._store
        try:
            async with store.write() as conn:
                record = await store.builds.get(item.build_id, conn)
                if record is not None and not record.phase.is_final \
                        and record.phase is not Phase.WAITING:
                    return False  # under way (an attempt holds it): not waiting to start
                if not await store.queue.expire(conn, item.id, now):
                    return False  # claimed meanwhile: it started
                if record is None or record.phase.is_final:
                    return False  # an item left behind: gone with its build
                limit = queue_ttl_of(record.options) or BuildLimit(
                    max(1, round(now - record.started)), "QUEUE_TTL")
                error = queue_expired_message(limit)
                if not await store.builds.move_phase(
                    conn, record.id, Phase.INTERNAL_ERROR,
                    log=[LogEntry(error, "error", {}), phase_entry(Phase.INTERNAL_ERROR)],
                    completed=now, error=error, retries_remaining=0, job_id=None,
                    secrets_stored=bool((record.options or {}).get("secrets")),
                ):
                    # moved by someone else meanwhile (a cancel): its item stays theirs
                    raise _LeftAlone
        except _LeftAlone:
            return False
        log.info("build %s expired in the queue: %s", record.id, error)
        metrics.BUILDS_FINISHED.labels(Phase.INTERNAL_ERROR.value).inc()
        return True


class _LeftAlone(Exception):
    """Rolls back an expiry whose build moved meanwhile."""
