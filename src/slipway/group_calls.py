"""Group calls: while one round trip is out, the calls that arrive gather and go
together in the next (at most `batch` per send). A round waits `linger` seconds first,
so that calls spread over time (heartbeats at a steady rate) gather too.

Heartbeats arrive by the thousand a second; one round trip each (a Redis touch, a
queue-lease UPDATE) would be most of what a tracked build costs the manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupedCalls(Generic[T, R]):
    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[Sequence[R]]],
        batch: int,
        linger: float = 0.0,
    ) -> None:
        """`send` answers a list of items with one result each, in order; a result that
        is an exception fails its own call only."""
        self._send = send
        self._batch = batch
        self._linger = linger
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._round: list[tuple[T, asyncio.Future[R]]] = []  # being sent
        self._task: asyncio.Task[None] | None = None

    async def call(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._pending:
            if self._linger:
                await asyncio.sleep(self._linger)
            self._round, self._pending = self._pending, []
            for start in range(0, len(self._round), self._batch):
                await self._send_one(self._round[start : start + self._batch])
            self._round = []

    async def _send_one(self, calls: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send([item for item, _ in calls])
        except Exception as exc:
            _fail(calls, exc)
            return
        for (_, done), result in zip(calls, results, strict=True):
            if done.done():
                continue
            if isinstance(result, Exception):  # this call's own failure, not the round's
                _fail([(None, done)], result)
            else:
                done.set_result(result)

    async def close(self, reason: Exception) -> None:
        """Stop; calls not answered yet fail with `reason`."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        _fail(self._round + self._pending, reason)
        self._round, self._pending = [], []


def _fail(calls: Sequence[tuple[object, asyncio.Future[R]]], failure: Exception) -> None:
    for _, done in calls:
        if not done.done():
            done.set_exception(failure)
            done.exception()  # retrieved: a caller that left must not warn
