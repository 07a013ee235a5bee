"""Ending background tasks without cancelling them mid-query where possible."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


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
