"""Quay's build logs in BUILDLOGS_REDIS (Quay's data/buildlogs.py), where Quay's UI and
API read them: the Redis list `builds/<uuid>/logs`, one JSON entry per item,
`{"message": ..., "type": ..., "data": {...}}` with `type` and `data` left out when
empty, and `data.datetime` = str(datetime.now()) as Quay's manager adds it.

Each append is a non-transactional pipeline of EXPIRE (7 days) then RPUSH, as Quay's;
here the entries of many appends, of many builds, share one pipeline and each build's
entries one RPUSH. Because EXPIRE comes first, a build's first append leaves its list
without a TTL until the next one, as with Quay.

The status key `builds/<uuid>/status` is not written: Quay's current manager does not
write it either, and a status whose `heartbeat` stops moving makes Quay's API report
the build as `internalerror`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from slipway.config.quay import BuildLogsRedisConfig
from slipway.quay.errors import QuayModeError
from slipway.store.records import LogEntry

SEVEN_DAYS_S = 7 * 24 * 3600
ONE_DAY_S = 24 * 3600


def logs_key(build_uuid: str) -> str:
    return f"builds/{build_uuid}/logs"


def status_key(build_uuid: str) -> str:
    return f"builds/{build_uuid}/status"


def entry_json(entry: LogEntry, now: str) -> str:
    """One list item, as Quay's append_log_message serialises it (`now`: the
    str(datetime.now()) Quay's manager puts into data.datetime)."""
    obj: dict[str, Any] = {"message": entry.message}
    if entry.type:
        obj["type"] = entry.type
    obj["data"] = {**entry.data, "datetime": now}
    return json.dumps(obj)


def parse_entry(raw: bytes | str) -> LogEntry:
    obj = json.loads(raw)
    data = obj.get("data")
    return LogEntry(str(obj.get("message", "")), obj.get("type") or None,
                    dict(data) if isinstance(data, dict) else {})


class QuayBuildLogs:
    """Build logs of Quay builds: append (batched) and read, in BUILDLOGS_REDIS."""

    def __init__(self, config: BuildLogsRedisConfig) -> None:
        self.config = config
        # Quay's timeouts (1 s to connect, 2 s per call)
        self.redis = aioredis.Redis(
            **config.redis_kwargs(), socket_connect_timeout=1, socket_timeout=2,
            health_check_interval=2,
        )

    async def close(self) -> None:
        await self.redis.aclose()

    async def check(self) -> None:
        """At start: BUILDLOGS_REDIS answers, else QuayModeError naming the key."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise QuayModeError(
                f"BUILDLOGS_REDIS: cannot reach Redis at {self.config.address}: "
                f"{type(exc).__name__}: {exc}; Quay's build logs live there, so slipway "
                "needs the same BUILDLOGS_REDIS (host, port, password, ssl) as Quay"
            ) from None

    async def append(self, build_uuid: str, entries: Sequence[LogEntry]) -> int:
        """Append in order; the list's new length."""
        return (await self.append_many({build_uuid: entries}))[build_uuid]

    async def append_many(self, batches: Mapping[str, Sequence[LogEntry]]) -> dict[str, int]:
        """The entries of several builds in one pipeline; each build's new length."""
        now = str(dt.datetime.now())
        pipe = self.redis.pipeline(transaction=False)
        order = []
        for build_uuid, entries in batches.items():
            if not entries:
                pipe.llen(logs_key(build_uuid))
                order.append((build_uuid, 1))
                continue
            pipe.expire(logs_key(build_uuid), SEVEN_DAYS_S)
            pipe.rpush(logs_key(build_uuid), *(entry_json(e, now) for e in entries))
            order.append((build_uuid, 2))
        results = await pipe.execute()
        totals: dict[str, int] = {}
        position = 0
        for build_uuid, commands in order:
            position += commands
            totals[build_uuid] = int(results[position - 1])
        return totals

    async def read(
        self, build_uuid: str, start: int = 0, limit: int | None = None
    ) -> tuple[int, list[LogEntry]]:
        """(total, entries from `start`), as Quay's get_log_entries (LLEN, LRANGE)."""
        end = -1 if limit is None else start + limit - 1
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(logs_key(build_uuid))
        pipe.lrange(logs_key(build_uuid), start, end)
        total, raw = await pipe.execute()
        return int(total), [parse_entry(item) for item in raw]

    async def count(self, build_uuid: str) -> int:
        return int(await self.redis.llen(logs_key(build_uuid)))
