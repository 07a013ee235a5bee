"""Exponential backoff, the one way slipway paces retries against something unreachable
(the manager for a worker; the database, Redis or a peer for a manager)."""

from __future__ import annotations


class Backoff:
    """Pauses of `first`, then twice as long after each failure, never over `cap`;
    `reset()` after a success starts again from `first`."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self._next = min(first, cap)

    def next(self) -> float:
        """The pause to take now; the one after it is twice as long (at most `cap`)."""
        pause = self._next
        self._next = min(pause * 2, self.cap)
        return pause

    def reset(self) -> None:
        self._next = min(self.first, self.cap)
