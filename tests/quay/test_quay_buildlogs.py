"""Build logs written where and as Quay's UI reads them (a real Redis): the list
`builds/<uuid>/logs`, Quay's entry shape and datetime, its TTL, batched appends, reads
from an index, and a clear refusal when BUILDLOGS_REDIS does not answer."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from support.redis_server import RedisServer, free_port

from slipway.config.quay import BuildLogsRedisConfig
from slipway.quay.buildlogs import QuayBuildLogs
from slipway.quay.errors import QuayModeError
from slipway.store.logs import LogEntry

DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")  # str(datetime.now())


class _Datetime:
    """Equal to any datetime text of Quay's format."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(DATETIME.match(other))


ANY = _Datetime()


@pytest_asyncio.fixture(loop_scope="session")
async def logs(redis_server: RedisServer) -> AsyncIterator[QuayBuildLogs]:
    buildlogs = QuayBuildLogs(BuildLogsRedisConfig(host="127.0.0.1", port=redis_server.port))
    await buildlogs.check()
    yield buildlogs
    await buildlogs.close()


@pytest_asyncio.fixture(loop_scope="session")
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
    yield client
    await client.aclose()


async def test_entries_are_stored_as_quays_manager_stores_them(
    logs: QuayBuildLogs, raw: aioredis.Redis
) -> None:
    build = str(uuid.uuid4())
    total = await logs.append(build, [
        LogEntry("pulling", "phase", {"registry_url": "quay.example.test", "base_image": "b"}),
        LogEntry("Step 1/2 : FROM busybox", "command"),
        LogEntry("plain output line"),
    ])
    assert total == 3
    stored = await raw.lrange(f"builds/{build}/logs", 0, -1)
    parsed = [json.loads(item) for item in stored]
    assert [list(p) for p in parsed] == [["message", "type", "data"]] * 2 + [["message", "data"]]
    assert [list(p["data"]) for p in parsed] == [
        ["registry_url", "base_image", "datetime"], ["datetime"], ["datetime"]]
    assert parsed[0]["type"] == "phase" and parsed[1]["type"] == "command"
    assert all(DATETIME.match(p["data"]["datetime"]) for p in parsed)
    # json.dumps with its default separators, as Quay writes it
    assert stored[2] == json.dumps(parsed[2])


async def test_the_list_expires_after_seven_days_from_the_second_append(
    logs: QuayBuildLogs, raw: aioredis.Redis
) -> None:
    build = str(uuid.uuid4())
    await logs.append(build, [LogEntry("first")])
    assert await raw.ttl(f"builds/{build}/logs") == -1  # EXPIRE came before the list existed
    await logs.append(build, [LogEntry("second")])
    assert 604790 < await raw.ttl(f"builds/{build}/logs") <= 604800


async def test_many_builds_entries_go_in_one_pipeline(
    logs: QuayBuildLogs, raw: aioredis.Redis
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await logs.append(a, [LogEntry("already there")])
    before = (await raw.info("stats"))["total_commands_processed"]
    totals = await logs.append_many({a: [LogEntry(f"a{i}") for i in range(100)],
                                     b: [LogEntry(f"b{i}") for i in range(50)]})
    after = (await raw.info("stats"))["total_commands_processed"]
    assert totals == {a: 101, b: 50}
    assert after - before == 5  # EXPIRE + RPUSH per build, and the first INFO
    assert (await logs.read(a, start=99)) == (101, [LogEntry("a98", None, {"datetime": ANY}),
                                                    LogEntry("a99", None, {"datetime": ANY})])


async def test_reading_from_an_index_with_a_limit(logs: QuayBuildLogs) -> None:
    build = str(uuid.uuid4())
    await logs.append(build, [LogEntry(f"line {i}") for i in range(10)])
    total, entries = await logs.read(build, start=3, limit=2)
    assert total == 10 and [e.message for e in entries] == ["line 3", "line 4"]
    assert await logs.count(build) == 10
    assert await logs.read(str(uuid.uuid4())) == (0, [])


async def test_an_unreachable_buildlogs_redis_is_refused_naming_the_key() -> None:
    port = free_port()
    logs = QuayBuildLogs(BuildLogsRedisConfig(host="127.0.0.1", port=port, password="pw-secret"))
    try:
        with pytest.raises(QuayModeError) as info:
            await logs.check()
    finally:
        await logs.close()
    message = str(info.value)
    assert message.startswith(f"BUILDLOGS_REDIS: cannot reach Redis at 127.0.0.1:{port}")
    assert "pw-secret" not in message


async def test_a_wrong_password_is_refused_naming_the_key() -> None:
    server = RedisServer(password="right-one")
    server.start()
    logs = QuayBuildLogs(BuildLogsRedisConfig(host="127.0.0.1", port=server.port,
                                              password="wrong-one"))
    try:
        with pytest.raises(QuayModeError, match=r"^BUILDLOGS_REDIS: cannot reach Redis") as info:
            await logs.check()
        assert "wrong-one" not in str(info.value)
    finally:
        await logs.close()
        server.close()
