"""This process's background tasks: kept referenced while they run, their failures logged,
and ended without cancelling them mid-query where possible."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from slipway.domain.refusals import CallRefused
from slipway.manager.call_outages import OUTAGES

log = logging.getLogger("slipway.manager")


class Background:
    """The tasks a manager runs beside its loops (worker stops, worker calls run to their
    end): asyncio keeps only a weak reference to a task, so they are held here."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run `coro` in the background, keeping a reference and logging its failure."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            exc = None if t.cancelled() else t.exception()
            # CallRefused is an answer to the worker, not a failure; so is an outage
            # (UNAVAILABLE), which the store or the orchestrator logs once
            if exc is not None and not isinstance(exc, (CallRefused, *OUTAGES)):
                log.error("%s failed", what, exc_info=exc)

        task.add_done_callback(done)
        return task

    async def finish(self, grace: float) -> None:
        await finish_or_cancel(list(self.tasks), grace)


async def finish_or_cancel(tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]],
                           grace: float) -> None:
    """Wait up to `grace` seconds for the tasks to end by themselves, then cancel the
    rest. A task cancelled inside a SQLAlchemy/aiosqlite call can be left waiting for a
    reply forever, so cancelling is the fallback, not the way to stop."""
    pending = {tasks} if isinstance(tasks, asyncio.Task) else set(tasks)
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=grace)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=grace)
    for task in pending:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: its failure was logged where it happened
