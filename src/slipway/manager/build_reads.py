"""Build records read by the manager's hot path (an attempt's start, a registration)."""

from __future__ import annotations

from slipway.group_calls import GroupedCalls
from slipway.store.interfaces import Store
from slipway.store.records import BuildRecord

BUILD_LOOKUP_BATCH = 200  # build records per SELECT


class BuildReads:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._grouped = GroupedCalls(store.builds.get_each, BUILD_LOOKUP_BATCH)

    async def get(self, build_id: str) -> BuildRecord | None:
        """The build's record. On PostgreSQL the reads that arrive while one is out share
        the next query (a round trip each would be paid on every build's start);
        SQLite reads at once on the loop's thread, so there is nothing to share."""
        if not self._store.shares_lookups:
            return await self._store.builds.get(build_id)
        return await self._grouped.call(build_id)

    async def close(self, error: Exception) -> None:
        """Fail the reads still waiting for a shared query."""
        await self._grouped.close(error)
