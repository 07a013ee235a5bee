"""Group commit of build log lines: every LogMessage stream's lines go to the database
together, in one transaction per round, instead of one transaction per stream's batch.

A stream waits until its lines are committed (an acknowledged line is durable); while one
transaction runs, the lines arriving on all streams gather for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from slipway.manager.background import finish_or_cancel
from slipway.store.interfaces import Store
from slipway.store.records import LogEntry

CLOSE_GRACE = 10.0

Lines = Mapping[str, Sequence[LogEntry]]  # build id -> entries, in order


class LogWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[Lines, asyncio.Future[set[str]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def append(self, lines: Lines) -> set[str]:
        """Store the lines; returns the builds whose lines were refused (build gone)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[set[str]] = loop.create_future()
        self._pending.append((lines, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        # shielded: a stream that goes away does not withdraw lines already handed over
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._pending:
            round_, self._pending = self._pending, []
            try:
                missing = await self._write(round_)
            except BaseException as exc:
                if isinstance(exc, Exception):
                    _fail(round_, exc)
                    continue
                # cancelled: nothing handed over, now or later, gets written
                stopping = RuntimeError("the build manager is shutting down")
                pending, self._pending = self._pending, []
                _fail(round_ + pending, stopping)
                raise
            for lines, done in round_:
                if not done.done():
                    done.set_result(missing.intersection(lines))

    async def _write(self, round_: list[tuple[Lines, asyncio.Future[set[str]]]]) -> set[str]:
        merged: dict[str, list[LogEntry]] = {}
        for lines, _ in round_:
            for build_id, entries in lines.items():
                merged.setdefault(build_id, []).extend(entries)
        missing: set[str] = set()
        async with self.store.write() as conn:
            for build_id, entries in merged.items():
                try:
                    await self.store.logs.append(build_id, entries, conn)
                except KeyError:  # the build was deleted; nothing was written for it
                    missing.add(build_id)
        return missing

    async def close(self) -> None:
        """Write what was handed over, then stop."""
        if self._task is not None:
            await finish_or_cancel(self._task, CLOSE_GRACE)


def _fail(waiting: list[tuple[Lines, asyncio.Future[set[str]]]], failure: Exception) -> None:
    for _, done in waiting:
        if not done.done():
            done.set_exception(failure)
            done.exception()  # retrieved: a caller that left must not warn
