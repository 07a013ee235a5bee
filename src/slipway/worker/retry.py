"""Retrying gRPC calls while the manager is briefly unreachable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from slipway.backoff import Backoff
from slipway.worker.errors import ManagerUnreachable

log = logging.getLogger("slipway.worker")
T = TypeVar("T")

# Codes that mean "the manager (or the path to it) is not there right now". CANCELLED too:
# the worker never cancels a call it still awaits, so it is the other side's doing (a
# manager stopping, or overloaded, or a proxy in between), and the manager never answers
# it on purpose. The manager answers UNAVAILABLE, with a retry hint, while its database or
# Redis is down (manager/call_outages.py).
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
CALL_TIMEOUT = 30.0
# the manager's hint of how long an outage may last (manager/call_outages.py)
RETRY_HINT_KEY = "retry-after-s"
# A registration the manager has handled cannot be tried again (its one-time token is
# spent: "already used"), so its answer is awaited longer than other calls'. A call still
# waiting in an overloaded manager's queue, never handled, ends CANCELLED and is retried.
REGISTER_TIMEOUT = 120.0


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRYABLE


def retry_hint(exc: BaseException) -> float:
    """Seconds the manager asked the worker to wait before trying again (0: none)."""
    if not isinstance(exc, grpc.aio.AioRpcError):
        return 0.0
    for key, value in exc.trailing_metadata() or ():
        if key == RETRY_HINT_KEY:
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 0.0
    return 0.0


def describe(exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    return f"{code.name if code else 'UNKNOWN'}: {exc.details() or ''}".rstrip(": ")


class RetryWindow:
    """Backoff between tries that gives up `window` seconds after the first failure. A
    retry hint of the manager's lengthens a pause up to the backoff's cap, never beyond:
    the window is what the worker's heartbeats may go without (manager/worker_env.py)."""

    def __init__(self, window: float, first: float = 0.2, cap: float = 5.0) -> None:
        self.window = window
        self._cap = cap
        self._backoff = Backoff(first, cap)
        self._since: float | None = None

    def reset(self) -> None:
        self._since = None
        self._backoff.reset()

    async def wait(self, what: str, exc: BaseException) -> None:
        """Sleep before the next attempt, or raise ManagerUnreachable past the window."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        reason = describe(exc) if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        if now - self._since >= self.window:
            raise ManagerUnreachable(
                f"{what}: the manager was unreachable for {self.window:.0f} s ({reason})"
            )
        pause = max(self._backoff.next(), min(retry_hint(exc), self._cap))
        log.warning("%s failed (%s); retrying in %.1f s", what, reason, pause)
        await asyncio.sleep(min(pause, max(0.0, self._since + self.window - now)))


async def call_with_retry(what: str, window: float, call: Callable[[], Awaitable[T]]) -> T:
    backoff = RetryWindow(window)
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if not is_retryable(exc):
                raise ManagerUnreachable(f"{what}: the manager refused ({describe(exc)})") from None
            await backoff.wait(what, exc)
