"""Build traces at rest (docs/traces.md): the span records of each build, in rows of
slipway_build_traces (one per build and write), deleted with the build by retention."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from slipway.store.database import Database, SqlConnection
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import build_traces as t


class BuildTraceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, spans: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        rows = [{"build_id": build_id, "spans": list(records), "created": time.time()}
                for build_id, records in spans.items() if records]
        if not rows:
            return
        async with self.db.write() as conn:
            await conn.execute(insert(t), rows)

    @rerun_if_connection_lost
    async def read(self, build_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(t.c.spans).where(t.c.build_id == build_id).order_by(t.c.id))).all()
        return [span for row in rows for span in row.spans]

    @staticmethod
    async def delete(conn: SqlConnection, build_ids: Sequence[str]) -> None:
        await conn.execute(delete(t).where(t.c.build_id.in_(list(build_ids))))


class MemoryTraceStore:
    """Quay mode's: the traces of the latest `builds` builds in this process's memory
    (Quay's database gets no table of slipway's traces; export them over OTLP to keep
    them)."""

    def __init__(self, builds: int = 1000) -> None:
        self._builds = builds
        self._spans: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    async def append(self, spans: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        for build_id, records in spans.items():
            kept = self._spans.pop(build_id, [])
            kept.extend(records)
            self._spans[build_id] = kept
        while len(self._spans) > self._builds:
            self._spans.popitem(last=False)

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        return list(self._spans.get(build_id, ()))
