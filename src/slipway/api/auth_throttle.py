"""Repeated failed authentications from one client address are slowed down: past
ACCESS.FAILED_AUTH_LIMIT failures within ACCESS.FAILED_AUTH_WINDOW seconds, its requests
are answered 429 with Retry-After (api/auth.py) until the oldest failure leaves the
window. A guess of a token then costs a wait, while a client that sends a good token
is never slowed.

Counted per manager process: each manager slows down what it sees (a client spread over
N managers gets N times the limit, still a limit)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

# the addresses remembered at most: the oldest are forgotten first, so a flood of
# addresses cannot grow the process without bound
MAX_CLIENTS = 100_000


class FailedAuthThrottle:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds the client must wait before it may try again; None: it may now."""
        now = time.monotonic() if now is None else now
        failures = self._recent(client, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        failures = self._recent(client, now)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.limit)
            if len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        failures.append(now)
        self._failures.move_to_end(client)
