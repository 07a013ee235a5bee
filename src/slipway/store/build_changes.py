"""Which builds this process's committed writes changed, told to this process's watchers.

The log stream (api/sse.py) polls the store for a build's new entries and its end. When
the manager writing them runs in the same process (the embedded default, and any server
that runs both), it need not wait for the next poll: the stores mark the builds a
transaction changes (`mark_changed`), and `Database.write()` wakes their watchers once
that transaction is committed, so a wake-up always finds the change. Writers in other
processes are still seen by the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

# the builds changed by the transaction running in this task (None: none is running)
_changed_in_transaction: ContextVar[set[str] | None] = ContextVar(
    "slipway_changed_builds", default=None)


def mark_changed(build_id: str) -> None:
    """Note, inside a write transaction, that it changes `build_id`'s record or log."""
    changed = _changed_in_transaction.get()
    if changed is not None:
        changed.add(build_id)


class BuildChanges:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def collecting(self) -> Iterator[set[str]]:
        """The set `mark_changed` fills while the block runs (one transaction's)."""
        changed: set[str] = set()
        token = _changed_in_transaction.set(changed)
        try:
            yield changed
        finally:
            _changed_in_transaction.reset(token)

    def notify(self, build_ids: Iterable[str]) -> None:
        """Wake the watchers of `build_ids`: call once their changes are committed."""
        for build_id in build_ids:
            for watcher in self._watchers.get(build_id, ()):
                watcher.set()

    @contextlib.contextmanager
    def watch(self, build_id: str) -> Iterator[asyncio.Event]:
        """An event set by each committed change to `build_id`; the watcher clears it
        before it reads, so a change committed after the read sets it again."""
        watcher = asyncio.Event()
        self._watchers.setdefault(build_id, set()).add(watcher)
        try:
            yield watcher
        finally:
            watchers = self._watchers[build_id]
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[build_id]
