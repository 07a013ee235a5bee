"""The orchestrator: shared, expiring keys, locks and key events between managers.

Keys are strings relative to the orchestrator's prefix (ORCHESTRATOR_PREFIX); the
implementation adds the prefix. An EXPIRE event carries the value the key last held,
so a manager can act on an expired job without having kept a copy.

The orchestrator's keys may be lost as a whole (a Redis restarted without persistence, a
failover to a replica that lacked them): `epoch` names the data set, so a manager can
tell that its keys are gone rather than ended, and put back those it is responsible for.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum


class KeyEventKind(StrEnum):
    CREATE = "create"
    SET = "set"
    DELETE = "delete"
    EXPIRE = "expire"


@dataclass(frozen=True)
class KeyEvent:
    kind: KeyEventKind
    key: str
    value: str | None


EventCallback = Callable[[KeyEvent], Awaitable[None]]
# key prefix -> kinds of write event on its keys that no process acts on: a writer need not
# announce them to other processes
UnpublishedEvents = Mapping[str, Collection[KeyEventKind]]


class OrchestratorError(Exception):
    """The orchestrator cannot be reached or refused an operation."""


class Orchestrator(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and begin delivering events to subscribers."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def healthy(self) -> bool: ...

    @abc.abstractmethod
    async def epoch(self) -> str:
        """The name of the orchestrator's current data set: the same answer as long as its
        keys are kept, a new one once they were lost (the first caller after the loss
        picks it; every caller then gets it)."""

    @abc.abstractmethod
    async def get(self, key: str) -> str | None:
        """The key's value, or None when it does not exist (or has expired)."""

    @abc.abstractmethod
    async def get_prefixed(self, prefix: str) -> dict[str, str]:
        """Every live key starting with `prefix`, with its value."""

    @abc.abstractmethod
    async def set(
        self,
        key: str,
        value: str,
        *,
        overwrite: bool = True,
        expiration: float | None = None,
    ) -> bool:
        """Store `value`. With overwrite=False only when the key is absent (returns False
        when it exists). `expiration` is seconds from now; None keeps no expiry."""

    @abc.abstractmethod
    async def compare_and_set(
        self, key: str, expected: str | None, value: str, *, expiration: float | None = None
    ) -> bool:
        """Atomically replace the value when it currently equals `expected`
        (None: the key must be absent)."""

    @abc.abstractmethod
    async def touch(self, key: str, expiration: float) -> bool:
        """Push the key's expiry to `expiration` seconds from now; False if it is gone."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the key (emits DELETE, never EXPIRE). True when it existed."""

    @abc.abstractmethod
    async def lock(self, key: str, owner: str, expiration: float) -> bool:
        """Take a lock that expires by itself; True when `owner` now holds it."""

    @abc.abstractmethod
    async def unlock(self, key: str, owner: str) -> bool:
        """Release a lock only if `owner` holds it."""

    @abc.abstractmethod
    def subscribe(self, prefix: str, callback: EventCallback,
                  kinds: Collection[KeyEventKind] | None = None) -> None:
        """Call `callback` for every event (of `kinds`; None: of every kind) on a key
        starting with `prefix`, in this process. Several subscribers may share a prefix."""

    @abc.abstractmethod
    def on_events_missed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this process's event delivery is back after an outage:
        events of the meantime (another process's cancel, a job's end) may be lost, and
        whoever relies on them must look at the keys and the database again."""
