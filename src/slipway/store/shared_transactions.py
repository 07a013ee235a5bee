"""Short write transactions that arrive together share one PostgreSQL transaction.

Each of a build's hot-path writes (attempt begun, worker recorded, worker registered) is a
couple of statements; as its own transaction it also costs a pool checkout, BEGIN and
COMMIT, each a round trip on the manager's event loop, and PostgreSQL a commit: under a
backlog, most of what scheduling a build would cost. Here the writes
that arrive while one shared transaction is out go together in the next, and the rows
they append to build logs and the queue leases they push out are written once for all,
just before it commits.

A shared transaction that fails is run again one write per transaction, so one write's
error (or a deadlock with another transaction) is that write's alone. SQLite has one
writer at a time and commits without a sync: there each write keeps its own transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Executable

from slipway.group_calls import GroupedCalls
from slipway.store.database import Database, SqlConnection
from slipway.store.log_rows import DeferredLogRows, insert_log_rows, log_rows, raise_log_counts
from slipway.store.records import LogEntry

R = TypeVar("R")

# writes per shared transaction, at most: a few dozen rows locked for a few milliseconds
SHARED_WRITES = 64


class Leases(Protocol):
    """The queue whose leases the shared writes push out: slipway's (store/queue.py) or
    Quay mode's (quay/store.py)."""

    async def extend_processing_many(
        self, leases: list[tuple[int, float]], conn: SqlConnection | None = None
    ) -> list[bool]:
        ...


class SharedConnection(DeferredLogRows):
    """What a shared write gets: statements run at once, except the log rows it appends
    (`append_with`, `append_log`) and the leases it pushes out, which are written at
    `flush`."""

    def __init__(self, conn: SqlConnection, *, postgres: bool) -> None:
        super().__init__()
        self._conn = conn
        self._postgres = postgres
        self._appends: list[tuple[str, Sequence[LogEntry]]] = []
        self._leases: list[tuple[int, float]] = []

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        return await self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return await self._conn.scalar(statement, parameters)

    def extend_lease(self, item_id: int, seconds_from_now: float) -> None:
        """Push the queue item's lease out (if it is still being processed)."""
        self._leases.append((item_id, seconds_from_now))

    def append_log(self, build_id: str, entries: Sequence[LogEntry]) -> None:
        """Append to the build's log (if the build exists), numbered at `flush` together
        with the other writes' appends: one UPDATE of the builds' counters for all, where
        each would be a round trip of its own."""
        self._appends.append((build_id, entries))

    async def flush(self, queue: Leases) -> None:
        if self._appends:
            added: dict[str, int] = {}
            for build_id, entries in self._appends:
                added[build_id] = added.get(build_id, 0) + len(entries)
            totals = await raise_log_counts(self._conn, added, set_based=self._postgres)
            following = {build_id: totals[build_id] - n for build_id, n in added.items()
                         if build_id in totals}
            for build_id, entries in self._appends:
                if build_id in following:
                    self.log_rows.extend(log_rows(build_id, following[build_id], entries))
                    following[build_id] += len(entries)
        if self.log_rows:
            await insert_log_rows(self._conn, self.log_rows)
        if self._leases:
            await queue.extend_processing_many(self._leases, self._conn)
        self.log_rows, self._appends, self._leases = [], [], []


SharedWrite = Callable[[SharedConnection], Awaitable[Any]]


class SharedTransactions:
    def __init__(self, db: Database, queue: Leases) -> None:
        self.db = db
        self._queue = queue
        self._calls: GroupedCalls[SharedWrite, Any] = GroupedCalls(
            self._run_together, SHARED_WRITES
        )

    async def run(self, write: Callable[[SharedConnection], Awaitable[R]]) -> R:
        """`write(conn)` in a committed transaction, perhaps shared; its result."""
        if self.db.is_sqlite:
            (result,) = await self._in_transaction([write])
        else:
            result = await self._calls.call(write)
        return result

    async def _run_together(self, writes: list[SharedWrite]) -> list[Any]:
        """One result per write, or its exception (GroupedCalls fails that call alone)."""
        if len(writes) > 1:
            try:
                return await self._in_transaction(writes)
            except Exception:
                pass  # each write runs again alone, and fails alone
        results: list[Any] = []
        for write in writes:
            try:
                results.extend(await self._in_transaction([write]))
            except Exception as exc:
                results.append(exc)
        return results

    async def _in_transaction(self, writes: list[SharedWrite]) -> list[Any]:
        async with self.db.write() as conn:
            shared = SharedConnection(conn, postgres=not self.db.is_sqlite)
            results = [await write(shared) for write in writes]
            await shared.flush(self._queue)
            return results

    async def close(self) -> None:
        await self._calls.close(RuntimeError("the build manager is stopping"))
