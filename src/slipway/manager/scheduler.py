"""The scheduler: claims queued builds the moment they arrive or capacity frees up.

Wake-ups come from submissions, ended attempts and other managers; a timer covers only
what no event announces (a retry's `available_after`, an expired lease, a queue TTL
passing: each pass also ends, now and then, the builds that waited past it,
manager/queue_expiry.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

from slipway.backoff import Backoff
from slipway.manager.background import finish_or_cancel
from slipway.manager.context import ManagerContext
from slipway.manager.jobs import JobStage
from slipway.manager.queue_expiry import QueueExpiry
from slipway.store.records import RoundRobin

log = logging.getLogger("slipway.manager")

# re-check the queue at least this often, whatever happens (a lost wake-up costs no more)
BACKSTOP_SECONDS = 15.0
# attempts being started at once, at most: a backlog of thousands claimed in one go would
# queue thousands of tasks on the database pool, where they would time out
MAX_STARTING = 64
# Under a backlog, claim only once this many start slots are free: a claim's query reads
# the whole waiting queue, so topping up one slot at a time ran it once per build.
CLAIM_BATCH = MAX_STARTING // 2
# pauses between tries while the database or orchestrator is unreachable
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0
# how long a stopping scheduler may take to finish its pass before it is cancelled
STOP_GRACE = 10.0


class Scheduler:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx
        self._event = asyncio.Event()
        self._round_robin = RoundRobin()
        self._task: asyncio.Task[None] | None = None
        self._starting = 0
        self.expiry = QueueExpiry(ctx.store)
        self.paused = False
        self._stopping = False

    def wake(self) -> None:
        self._event.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Let the loop finish its pass and leave. Cancelling it mid-query instead can
        leave SQLAlchemy's aiosqlite connection awaiting a reply that never comes (the
        task then never ends), so cancellation is only the fallback."""
        if self._task is None:
            return
        self._stopping = True
        self._event.set()
        await finish_or_cancel(self._task, STOP_GRACE)

    @property
    def capacity(self) -> int:
        return int(self.ctx.manager_config.ALLOWED_WORKER_COUNT) - len(self.ctx.attempts)

    async def _run(self) -> None:
        failures = 0
        backoff = Backoff(FIRST_BACKOFF, MAX_BACKOFF)
        while not self._stopping:
            try:
                await self.schedule_now()
                if not self.paused:
                    await self.expiry.look_if_due()
                timeout = await self._next_timeout()
                if failures:
                    log.warning("scheduling works again")
                failures = 0
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or orchestrator down: back off, keep going
                failures += 1
                timeout = backoff.next()
                if failures == 1:
                    log.exception("scheduling failed; retrying with backoff")
                else:
                    log.warning("scheduling still failing (%s); next try in %.1f s",
                                type(exc).__name__, timeout)
            try:
                async with asyncio.timeout(timeout):
                    await self._event.wait()
            except TimeoutError:
                pass
            self._event.clear()

    async def schedule_now(self) -> int:
        """Claim and start as many builds as capacity allows; returns how many."""
        started = 0
        while (not self.paused and not self._stopping and self.capacity > 0
               and self._starting <= MAX_STARTING - CLAIM_BATCH):
            claim_began = time.time()
            items = await self.ctx.store.queue.claim(
                self.ctx.manager_id,
                limit=min(self.capacity, MAX_STARTING - self._starting),
                lease_seconds=self.ctx.attempts.lease_seconds(JobStage.SCHEDULING),
                namespace_limits=self.ctx.manager_config.NAMESPACE_LIMITS,
                round_robin=self._round_robin,
            )
            if not items:
                break
            claimed = (claim_began, time.time())
            for item in items:
                job = self.ctx.attempts.begin(item, claimed)
                self._starting += 1
                task = self.ctx.spawn(self.ctx.attempts.start(item, job),
                                      f"starting {item.build_id}")
                task.add_done_callback(self._started_one)
            started += len(items)
        return started

    def _started_one(self, _task: asyncio.Task[None]) -> None:
        self._starting -= 1
        if self._starting <= MAX_STARTING - CLAIM_BATCH:
            self.wake()  # room to start the next batch

    async def _next_timeout(self) -> float:
        now = time.time()
        upcoming = await self.ctx.store.queue.next_available_at(after=now)
        backstop = min(BACKSTOP_SECONDS, max(0.01, self.expiry.seconds_to_next_look(now)))
        if upcoming is None:
            return backstop
        return min(backstop, max(0.01, upcoming - now))
