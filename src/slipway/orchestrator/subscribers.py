"""Delivery of key events to in-process subscribers (shared by every orchestrator).

Each callback runs as its own task, so a slow or failing subscriber never delays the
others nor the code that produced the event; exceptions are logged, not raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from slipway.orchestrator.base import EventCallback, KeyEvent, KeyEventKind

log = logging.getLogger(__name__)


class Subscribers:
    def __init__(self) -> None:
        self._subs: list[tuple[str, EventCallback, frozenset[KeyEventKind]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_missed: list[Callable[[], None]] = []

    def add(self, prefix: str, callback: EventCallback,
            kinds: Collection[KeyEventKind] | None = None) -> None:
        self._subs.append((prefix, callback, frozenset(KeyEventKind if kinds is None else kinds)))

    def dispatch(self, event: KeyEvent) -> list[asyncio.Task[None]]:
        """Start one task per matching subscriber (needs a running loop); returns them."""
        started = []
        for prefix, callback, kinds in self._subs:
            # no task for an event nobody acts on: under load they add up
            if event.kind in kinds and event.key.startswith(prefix):
                task = asyncio.get_running_loop().create_task(self._run(callback, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(task)
        return started

    def add_missed(self, callback: Callable[[], None]) -> None:
        self._on_missed.append(callback)

    def missed(self) -> None:
        """Events may have been lost (the subscription was down and is back): tell those
        who must look again at what the events would have said."""
        for callback in self._on_missed:
            try:
                callback()
            except Exception:
                log.exception("orchestrator missed-events callback %r failed", callback)

    @staticmethod
    async def _run(callback: EventCallback, event: KeyEvent) -> None:
        try:
            await callback(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "orchestrator subscriber %r failed on %s %s", callback, event.kind.value, event.key
            )

    async def close(self) -> None:
        """Cancel callbacks still running (the orchestrator is going away)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
