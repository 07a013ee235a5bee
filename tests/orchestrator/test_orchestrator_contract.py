"""The orchestrator contract, run against every implementation (memory and Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from support.orchestrator_events import Recorder
from support.redis_server import RedisServer

from slipway.orchestrator.base import KeyEvent, KeyEventKind, Orchestrator
from slipway.orchestrator.memory import MemoryOrchestrator

Make = Callable[..., Awaitable[Orchestrator]]

IMPLEMENTATIONS = ["memory", "redis"]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(params=IMPLEMENTATIONS)
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Factory of started orchestrators; same `prefix` = same shared namespace."""
    created: list[Orchestrator] = []
    run = uuid.uuid4().hex[:8]  # each test gets its own key space on the shared server
    memory_by_prefix: dict[str, MemoryOrchestrator] = {}

    async def factory(prefix: str = "p:") -> Orchestrator:
        orch: Orchestrator
        if request.param == "memory":
            orch = MemoryOrchestrator(prefix)
            memory_by_prefix.setdefault(prefix, orch)
        else:
            from slipway.orchestrator.redis import RedisOrchestrator

            server = request.getfixturevalue("redis_server")
            orch = RedisOrchestrator(server.config(), prefix=f"{run}:{prefix}")
        await orch.start()
        created.append(orch)
        return orch

    yield factory
    for orch in created:
        await orch.close()


async def test_get_set_and_overwrite(make: Make) -> None:
    o = await make()
    assert await o.get("a") is None
    assert await o.set("a", "1") is True
    assert await o.get("a") == "1"
    assert await o.set("a", "2", overwrite=False) is False
    assert await o.get("a") == "1"
    assert await o.set("a", "3") is True
    assert await o.get("a") == "3"
    assert await o.set("b", "x", overwrite=False) is True
    assert await o.get("b") == "x"


async def test_bad_expiration_is_refused(make: Make) -> None:
    o = await make()
    with pytest.raises(ValueError, match="positive"):
        await o.set("a", "1", expiration=0)
    with pytest.raises(ValueError, match="positive"):
        await o.touch("a", -1)
    assert await o.get("a") is None


async def test_expiration_removes_key_and_emits_expire_with_value(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    await o.set("job/1", "payload", expiration=0.5)
    assert await o.get("job/1") == "payload"
    event = await rec.wait_for(KeyEventKind.EXPIRE, "job/1")
    assert event.value == "payload"
    assert await o.get("job/1") is None
    assert rec.kinds("job/1") == [KeyEventKind.CREATE, KeyEventKind.EXPIRE]


async def test_set_without_expiration_clears_it(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    await o.set("a", "1", expiration=0.5)
    await o.set("a", "2")
    await o.set("sentinel", "s", expiration=0.7)
    await rec.wait_for(KeyEventKind.EXPIRE, "sentinel")
    assert await o.get("a") == "2"
    assert KeyEventKind.EXPIRE not in rec.kinds("a")


async def test_touch_extends_expiry(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    await o.set("kept", "v", expiration=0.5)
    assert await o.touch("kept", 60) is True
    # Set after "kept" with a longer expiry: had touch not worked, "kept" went first.
    await o.set("sentinel", "s", expiration=0.7)
    await rec.wait_for(KeyEventKind.EXPIRE, "sentinel")
    assert await o.get("kept") == "v"
    assert KeyEventKind.EXPIRE not in rec.kinds("kept")
    assert await o.touch("missing", 5) is False
    # A touch emits no event and can shorten the expiry too.
    assert await o.touch("kept", 0.1) is True
    await rec.wait_for(KeyEventKind.EXPIRE, "kept")
    assert rec.kinds("kept") == [KeyEventKind.CREATE, KeyEventKind.EXPIRE]


async def test_delete(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    assert await o.delete("nothing") is False
    await o.set("a", "1", expiration=0.5)
    assert await o.delete("a") is True
    assert await o.get("a") is None
    assert (await rec.wait_for(KeyEventKind.DELETE, "a")).value == "1"
    await o.set("sentinel", "s", expiration=0.7)
    await rec.wait_for(KeyEventKind.EXPIRE, "sentinel")
    # Deleted keys never expire later.
    assert rec.kinds("a") == [KeyEventKind.CREATE, KeyEventKind.DELETE]


async def test_compare_and_set(make: Make) -> None:
    o = await make()
    assert await o.compare_and_set("a", "x", "1") is False
    assert await o.get("a") is None
    assert await o.compare_and_set("a", None, "1") is True
    assert await o.compare_and_set("a", None, "2") is False
    assert await o.get("a") == "1"
    assert await o.compare_and_set("a", "wrong", "2") is False
    assert await o.get("a") == "1"
    assert await o.compare_and_set("a", "1", "2") is True
    assert await o.get("a") == "2"


async def test_compare_and_set_is_atomic_under_contention(make: Make) -> None:
    o = await make()
    await o.set("counter", "0")

    async def bump() -> bool:
        current = await o.get("counter")
        assert current is not None
        return await o.compare_and_set("counter", current, str(int(current) + 1))

    results = await asyncio.gather(*(bump() for _ in range(20)))
    assert await o.get("counter") == str(results.count(True))


async def test_compare_and_set_with_expiration(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    assert await o.compare_and_set("a", None, "1", expiration=0.2) is True
    event = await rec.wait_for(KeyEventKind.EXPIRE, "a")
    assert event.value == "1"


async def test_get_prefixed(make: Make) -> None:
    o = await make()
    await o.set("jobs/1", "a")
    await o.set("jobs/2", "b", expiration=60)
    await o.set("locks/1", "c")
    assert await o.get_prefixed("jobs/") == {"jobs/1": "a", "jobs/2": "b"}
    assert await o.get_prefixed("nothing/") == {}
    # Prefixes are literal text, not patterns.
    await o.set("a*b", "star")
    await o.set("axb", "x")
    assert await o.get_prefixed("a*") == {"a*b": "star"}


async def test_locks(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("", rec)
    assert await o.lock("lock/a", "m1", 60) is True
    assert await o.lock("lock/a", "m2", 60) is False
    assert await o.lock("lock/a", "m1", 60) is True  # the owner may re-take (extend) it
    assert await o.unlock("lock/a", "m2") is False  # not the owner: refused
    assert await o.lock("lock/a", "m2", 60) is False
    assert await o.unlock("lock/a", "m1") is True
    assert await o.unlock("lock/a", "m1") is False
    assert await o.lock("lock/a", "m2", 0.2) is True
    await rec.wait_for(KeyEventKind.EXPIRE, "lock/a")
    assert await o.lock("lock/a", "m1", 60) is True


async def test_events_create_set_delete_with_values(make: Make) -> None:
    o = await make()
    rec = Recorder()
    o.subscribe("jobs/", rec)
    await o.set("jobs/1", "v1")
    await o.set("jobs/1", "v2")
    await o.delete("jobs/1")
    await o.set("other/1", "x")
    await rec.wait_for(KeyEventKind.DELETE, "jobs/1")
    await o.set("jobs/end", "e")
    await rec.wait_for(KeyEventKind.CREATE, "jobs/end")
    assert [(e.kind, e.value) for e in rec.of("jobs/1")] == [
        (KeyEventKind.CREATE, "v1"),
        (KeyEventKind.SET, "v2"),
        (KeyEventKind.DELETE, "v2"),
    ]
    assert rec.of("other/1") == []  # subscriptions are by prefix


async def test_failing_and_slow_subscribers_do_not_block_others(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    o = await make()
    release = asyncio.Event()

    async def failing(event: KeyEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def slow(event: KeyEvent) -> None:
        await release.wait()

    rec = Recorder()
    o.subscribe("", failing)
    o.subscribe("", slow)
    o.subscribe("", rec)
    await o.set("a", "1")
    await o.set("b", "2", expiration=0.2)
    await rec.wait_for(KeyEventKind.CREATE, "a")
    await rec.wait_for(KeyEventKind.EXPIRE, "b")
    release.set()
    assert "subscriber bug" in caplog.text  # the failure is logged, not lost


async def test_several_subscribers_on_one_prefix(make: Make) -> None:
    o = await make()
    first, second = Recorder(), Recorder()
    o.subscribe("k", first)
    o.subscribe("k", second)
    await o.set("k1", "v")
    assert (await first.wait_for(KeyEventKind.CREATE, "k1")).value == "v"
    assert (await second.wait_for(KeyEventKind.CREATE, "k1")).value == "v"


async def test_different_prefixes_are_isolated(make: Make) -> None:
    a = await make("alpha:")
    b = await make("beta:")
    rec_b = Recorder()
    b.subscribe("", rec_b)
    await a.set("k", "from-a", expiration=0.2)
    assert await b.get("k") is None
    assert await b.get_prefixed("") == {}
    await b.set("end", "e", expiration=0.4)
    await rec_b.wait_for(KeyEventKind.EXPIRE, "end")
    assert rec_b.of("k") == []
    assert await a.get("k") is None


# Memory orchestrators are per-process by design: only Redis shares a prefix.
@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_same_prefix_instances_share_keys_and_events(make: Make) -> None:
    a = await make("shared:")
    b = await make("shared:")
    rec_a, rec_b = Recorder(), Recorder()
    a.subscribe("", rec_a)
    b.subscribe("", rec_b)
    await a.set("k", "v1")
    assert await b.get("k") == "v1"
    assert (await rec_b.wait_for(KeyEventKind.CREATE, "k")).value == "v1"
    assert (await rec_a.wait_for(KeyEventKind.CREATE, "k")).value == "v1"
    await b.set("k", "v2")
    assert (await rec_a.wait_for(KeyEventKind.SET, "k")).value == "v2"
    await a.delete("k")
    assert (await rec_b.wait_for(KeyEventKind.DELETE, "k")).value == "v2"
    assert await b.lock("lock", "owner-b", 60) is True
    assert await a.lock("lock", "owner-a", 60) is False


async def test_the_epoch_stays_while_the_keys_are_kept(make: Make) -> None:
    o = await make()
    first = await o.epoch()
    assert first
    await o.set("a", "1", expiration=60)
    await o.delete("a")
    assert await o.epoch() == first


@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_instances_sharing_a_prefix_share_its_epoch(make: Make) -> None:
    a = await make("shared-epoch:")
    b = await make("shared-epoch:")
    assert await a.epoch() == await b.epoch()


async def test_a_redis_restarted_without_its_keys_has_a_new_epoch_for_everyone() -> None:
    """The contract's one property of losing the keys: the epoch changes, and every
    instance sharing the prefix is told the same new one (a manager compares it with the
    one it wrote its keys in, to put them back)."""
    from slipway.orchestrator.redis import RedisOrchestrator

    server = RedisServer()
    server.start()
    instances = [RedisOrchestrator(server.config(), prefix="lost:") for _ in range(2)]
    try:
        for o in instances:
            await o.start()
        a, b = instances
        before = await a.epoch()
        await a.set("job", "1", expiration=60)
        server.restart()  # kill -9, then an empty Redis on the same port
        after = await _when_reachable(a.epoch)
        assert after != before
        assert await _when_reachable(b.epoch) == after
        assert await a.get("job") is None
        assert await a.epoch() == after  # and it stays
    finally:
        for o in instances:
            await o.close()
        server.close()


async def _when_reachable(call: Callable[[], Awaitable[str]]) -> str:
    """The answer once the restarted server answers (a pooled connection of the old one
    fails first); bounded, not timed."""
    from slipway.orchestrator.base import OrchestratorError

    async with asyncio.timeout(20):
        while True:
            try:
                return await call()
            except OrchestratorError:
                await asyncio.sleep(0.1)
