"""Riding out a database outage in code that must finish what it started.

Ending an attempt deletes its job key first (that decides who ends it, exactly once) and
then writes the outcome; if PostgreSQL is restarting at that moment, the write is retried
with backoff instead of leaving the build without an end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from slipway.backoff import Backoff
from slipway.store.errors import is_transient

log = logging.getLogger("slipway.manager")
T = TypeVar("T")

FIRST_DELAY = 0.2
MAX_DELAY = 5.0


async def retry_transient(
    operation: Callable[[], Awaitable[T]], what: str, *, give_up_after: float
) -> T:
    """Run `operation` (a whole transaction), again on transient database errors, until
    `give_up_after` seconds have passed; then the last error is raised."""
    deadline = time.monotonic() + give_up_after
    backoff = Backoff(FIRST_DELAY, MAX_DELAY)
    tries = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            delay = backoff.next()
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            tries += 1
            # the store logs the outage itself (store/outage.py): one line per operation
            # here, not one per try
            log.log(logging.WARNING if tries == 1 else logging.DEBUG,
                    "%s: database unavailable (%s); retrying until %.0f s have passed",
                    what, type(exc).__name__, give_up_after)
        await asyncio.sleep(delay)
