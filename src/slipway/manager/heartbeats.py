"""The queue lease of running attempts, pushed out by their workers' heartbeats.

A worker heartbeats every few seconds; its job key's expiry moves with each one
(`Attempts.touch`), while the queue lease, the backstop for a lost orchestrator, needs a
SQL write only about once per half HEARTBEAT_EXPIRY. This remembers, per job, when its
lease was last pushed out and which queue item it is (no lookup after the first), and
groups the pushes that arrive together into one UPDATE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slipway.group_calls import GroupedCalls
from slipway.store.interfaces import BuildQueue

log = logging.getLogger("slipway.manager")

LEASE_EXTENSION_BATCH = 500  # queue items per UPDATE
LEASE_EXTENSION_LINGER = 0.02  # a lease has tens of seconds left when it is pushed out


class HeartbeatLeases:
    def __init__(
        self,
        queue: BuildQueue[Any],
        *,
        lease_seconds: float,
        every: float,
        queue_id_of: Callable[[str], Awaitable[int | None]],
    ) -> None:
        self._lease_seconds = lease_seconds
        self._every = every
        self._queue_id_of = queue_id_of
        # job id -> (when its lease was last pushed out, monotonic; its queue item id)
        self._extended: dict[str, tuple[float, int]] = {}
        self._extensions: GroupedCalls[tuple[int, float], bool] = GroupedCalls(
            queue.extend_processing_many, LEASE_EXTENSION_BATCH, LEASE_EXTENSION_LINGER
        )

    async def heard(self, job_id: str) -> None:
        """The job's worker heartbeated (its job key is alive): push its lease out if it
        was not pushed out lately."""
        now = time.monotonic()
        last = self._extended.get(job_id)
        if last is not None and now - last[0] <= self._every:
            return
        queue_id = last[1] if last is not None else await self._queue_id_of(job_id)
        if queue_id is None:
            return
        try:
            await self._extensions.call((queue_id, self._lease_seconds))
            self._extended[job_id] = (now, queue_id)
        except Exception as exc:
            # the job key is alive, which is what the heartbeat is about; the lease (a
            # backstop) is pushed out on a later heartbeat once the database is back
            log.warning("could not extend the queue lease of job %s: %s", job_id,
                        type(exc).__name__)

    def forget(self, job_id: str) -> None:
        self._extended.pop(job_id, None)

    async def close(self, error: Exception) -> None:
        """Fail the pushes still waiting for a shared UPDATE (the manager is stopping)."""
        await self._extensions.close(error)
