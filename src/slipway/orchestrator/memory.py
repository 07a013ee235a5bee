"""In-process orchestrator for the embedded, single-manager set-up.

Unlike Quay's in-memory orchestrator it emits EXPIRE events. Deadlines live in one
heap with lazy invalidation (a `touch` pushes a new entry; stale ones are skipped when
they surface) and a single loop timer armed for the earliest deadline, so 10,000s of
keys with frequent touches cost O(log n) each and no task per key.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass

from slipway.orchestrator.base import (
    EventCallback,
    KeyEvent,
    KeyEventKind,
    Orchestrator,
    OrchestratorError,
)
from slipway.orchestrator.subscribers import Subscribers

_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


@dataclass(slots=True)
class _Entry:
    value: str
    deadline: float | None  # loop.time() at which the key expires


def check_expiration(expiration: float | None) -> None:
    if expiration is not None and not expiration > 0:
        raise ValueError(
            f"orchestrator expiration must be a positive number of seconds, got {expiration!r}"
        )


class MemoryOrchestrator(Orchestrator):
    def __init__(self, prefix: str = "") -> None:
        # Keys never leave this process, so the prefix only names the instance.
        self.prefix = prefix
        self._store: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._expiring = 0  # live entries with a deadline, to know when to compact
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._subs = Subscribers()
        self._closed = False
        # the keys live as long as this object: one data set, never lost on its own
        self._epoch = uuid.uuid4().hex

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._subs.close()

    async def healthy(self) -> bool:
        return not self._closed

    def subscribe(self, prefix: str, callback: EventCallback,
                  kinds: Collection[KeyEventKind] | None = None) -> None:
        self._subs.add(prefix, callback, kinds)

    def on_events_missed(self, callback: Callable[[], None]) -> None:
        pass  # in this process's memory: no event is ever lost

    # -- operations ----------------------------------------------------------------
    async def epoch(self) -> str:
        self._check_open()
        return self._epoch

    async def get(self, key: str) -> str | None:
        entry = self._live(key)
        return None if entry is None else entry.value

    async def get_prefixed(self, prefix: str) -> dict[str, str]:
        self._expire_due()
        return {k: e.value for k, e in self._store.items() if k.startswith(prefix)}

    async def set(
        self,
        key: str,
        value: str,
        *,
        overwrite: bool = True,
        expiration: float | None = None,
    ) -> bool:
        check_expiration(expiration)
        self._check_open()
        existing = self._live(key)
        if existing is not None and not overwrite:
            return False
        self._put(key, value, expiration, existed=existing is not None)
        return True

    async def compare_and_set(
        self, key: str, expected: str | None, value: str, *, expiration: float | None = None
    ) -> bool:
        check_expiration(expiration)
        self._check_open()
        existing = self._live(key)
        current = None if existing is None else existing.value
        if current != expected:
            return False
        self._put(key, value, expiration, existed=existing is not None)
        return True

    async def touch(self, key: str, expiration: float) -> bool:
        check_expiration(expiration)
        self._check_open()
        entry = self._live(key)
        if entry is None:
            return False
        self._set_deadline(key, entry, expiration)
        return True

    async def delete(self, key: str) -> bool:
        self._check_open()
        entry = self._live(key)
        if entry is None:
            return False
        self._remove(key, entry)
        self._emit(KeyEventKind.DELETE, key, entry.value)
        return True

    async def lock(self, key: str, owner: str, expiration: float) -> bool:
        check_expiration(expiration)
        self._check_open()
        entry = self._live(key)
        if entry is None:
            self._put(key, owner, expiration, existed=False)
            return True
        if entry.value != owner:
            return False
        self._set_deadline(key, entry, expiration)  # re-locking by the owner extends it
        return True

    async def unlock(self, key: str, owner: str) -> bool:
        self._check_open()
        entry = self._live(key)
        if entry is None or entry.value != owner:
            return False
        self._remove(key, entry)
        self._emit(KeyEventKind.DELETE, key, entry.value)
        return True

    # -- internals -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise OrchestratorError("the in-memory orchestrator is closed")

    def _emit(self, kind: KeyEventKind, key: str, value: str | None) -> None:
        if not self._closed:
            self._subs.dispatch(KeyEvent(kind, key, value))

    def _put(self, key: str, value: str, expiration: float | None, *, existed: bool) -> None:
        entry = self._store.get(key)
        if entry is None:
            entry = self._store[key] = _Entry(value, None)
        else:
            entry.value = value
        # Like Redis SET: a write without an expiration leaves the key without one.
        if expiration is None:
            if entry.deadline is not None:
                entry.deadline = None
                self._expiring -= 1
        else:
            self._set_deadline(key, entry, expiration)
        self._emit(KeyEventKind.SET if existed else KeyEventKind.CREATE, key, value)

    def _set_deadline(self, key: str, entry: _Entry, expiration: float) -> None:
        loop = asyncio.get_running_loop()
        if entry.deadline is None:
            self._expiring += 1
        entry.deadline = deadline = loop.time() + expiration
        heapq.heappush(self._heap, (deadline, next(self._seq), key))
        if len(self._heap) > 2 * self._expiring + 1024:
            self._compact()
        if self._timer is None or deadline < self._timer_at:
            self._arm(loop)

    def _remove(self, key: str, entry: _Entry) -> None:
        del self._store[key]
        if entry.deadline is not None:
            self._expiring -= 1  # its heap entries become stale and are skipped later

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if self._is_current(item)]
        heapq.heapify(self._heap)

    def _is_current(self, item: tuple[float, int, str]) -> bool:
        entry = self._store.get(item[2])
        return entry is not None and entry.deadline == item[0]

    def _live(self, key: str) -> _Entry | None:
        """The entry, expiring it first if its deadline passed before the timer fired."""
        entry = self._store.get(key)
        if entry is None or entry.deadline is None:
            return entry
        if entry.deadline <= asyncio.get_running_loop().time():
            self._expire_due()
            return self._store.get(key)
        return entry

    def _expire_due(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time() + _CLOCK_RESOLUTION  # the tolerance call_at fires with
        popped = False
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            popped = True
            if self._is_current(item):
                entry = self._store[item[2]]
                self._remove(item[2], entry)
                self._emit(KeyEventKind.EXPIRE, item[2], entry.value)
        if popped or self._timer is None:
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Point the single timer at the earliest current deadline (or at nothing)."""
        while self._heap and not self._is_current(self._heap[0]):
            heapq.heappop(self._heap)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap and not self._closed:
            self._timer_at = self._heap[0][0]
            self._timer = loop.call_at(self._timer_at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._expire_due()
