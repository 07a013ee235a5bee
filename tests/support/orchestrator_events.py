"""Collect orchestrator key events in tests and wait for specific ones."""

from __future__ import annotations

import asyncio

from slipway.orchestrator.base import KeyEvent, KeyEventKind

# A guard against hanging forever, not a timing assertion.
WAIT = 15.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[KeyEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: KeyEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait_for(self, kind: KeyEventKind, key: str, timeout: float = WAIT) -> KeyEvent:
        def find() -> KeyEvent | None:
            for e in self.events:
                if e.kind is kind and e.key == key:
                    return e
            return None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(find), timeout)
        found = find()
        assert found is not None
        return found

    def of(self, key: str) -> list[KeyEvent]:
        return [e for e in self.events if e.key == key]

    def kinds(self, key: str) -> list[KeyEventKind]:
        return [e.kind for e in self.of(key)]
