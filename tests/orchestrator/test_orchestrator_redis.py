"""RedisOrchestrator against real redis-server processes: keyspace set-up, expiry that
is delivered exactly once across managers, outages, authentication and TLS."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
import trustme
from support.orchestrator_events import WAIT, Recorder
from support.redis_server import RedisServer

from slipway.config.models import ManagerConfig
from slipway.manager.keys import UNPUBLISHED_EVENTS
from slipway.orchestrator.base import KeyEvent, KeyEventKind, OrchestratorError
from slipway.orchestrator.factory import create_orchestrator
from slipway.orchestrator.memory import MemoryOrchestrator
from slipway.orchestrator.redis import RedisOrchestrator
from slipway.orchestrator.redis_client import merge_keyspace_flags


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    s.start()
    yield s
    s.close()


@pytest.fixture
async def opened() -> AsyncIterator[list[RedisOrchestrator]]:
    """Orchestrators a test appends here are closed after it."""
    items: list[RedisOrchestrator] = []
    yield items
    for o in items:
        await o.close()


async def started(opened: list[RedisOrchestrator], o: RedisOrchestrator) -> RedisOrchestrator:
    opened.append(o)
    await o.start()
    return o


def admin(server: RedisServer) -> redis.Redis:
    # RESP2 without CLIENT SETINFO, so this client adds nothing to the server's errorstats.
    return redis.Redis(
        host="127.0.0.1",
        port=server.port,
        password=server.password,
        decode_responses=True,
        protocol=2,
        driver_info=None,
    )


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll until true: recovery has no fixed duration (the timeout only stops a hang)."""
    async with asyncio.timeout(WAIT * 2):
        while not await check():  # noqa: ASYNC110 (nothing to wait on but the server)
            await asyncio.sleep(0.1)


def test_merge_keyspace_flags() -> None:
    assert merge_keyspace_flags("") == "Kx"
    assert set(merge_keyspace_flags("Elh")) == set("ElhKx")
    assert merge_keyspace_flags("KA") == "KA"
    assert merge_keyspace_flags("Kgx") == "Kgx"  # what the operator set stays


async def test_start_enables_keyspace_notifications_keeping_existing_flags(
    opened: list[RedisOrchestrator],
) -> None:
    s = RedisServer(extra_args=["--notify-keyspace-events", "El"])
    s.start()
    try:
        await started(opened, RedisOrchestrator(s.config(), prefix="ks:"))
        flags = str(admin(s).config_get("notify-keyspace-events")["notify-keyspace-events"])
        assert set(flags) >= set("ElKx")
        assert "g" not in flags  # every touch would be an event to every manager
    finally:
        s.close()


async def test_skip_flag_never_calls_config_and_expiry_still_works(
    opened: list[RedisOrchestrator], caplog: pytest.LogCaptureFixture
) -> None:
    # Managed Redis: CONFIG does not exist and notifications are off.
    s = RedisServer(extra_args=["--rename-command", "CONFIG", "", "--notify-keyspace-events", ""])
    s.start()
    try:
        cfg = s.config(REDIS_SKIP_KEYSPACE_EVENT_SETUP=True)
        o = await started(opened, RedisOrchestrator(cfg, prefix="skip:"))
        rec = Recorder()
        o.subscribe("", rec)
        await o.set("job", "value", expiration=0.2)
        assert (await rec.wait_for(KeyEventKind.EXPIRE, "job")).value == "value"
        # Any CONFIG call would have been an "unknown command" error on the server.
        # (NOSCRIPT is the normal first EVALSHA of each script.)
        errors = admin(s).info("errorstats")
        assert set(errors) <= {"errorstat_NOSCRIPT"}, errors
        assert "notify-keyspace-events" not in caplog.text
    finally:
        s.close()


async def test_without_skip_flag_and_no_config_permission_start_warns_and_works(
    opened: list[RedisOrchestrator], caplog: pytest.LogCaptureFixture
) -> None:
    s = RedisServer(extra_args=["--rename-command", "CONFIG", ""])
    s.start()
    try:
        with caplog.at_level(logging.WARNING):
            o = await started(opened, RedisOrchestrator(s.config(), prefix="noconf:"))
        assert "REDIS_SKIP_KEYSPACE_EVENT_SETUP" in caplog.text
        rec = Recorder()
        o.subscribe("", rec)
        await o.set("job", "value", expiration=0.2)
        assert (await rec.wait_for(KeyEventKind.EXPIRE, "job")).value == "value"
    finally:
        s.close()


async def test_each_expiry_is_delivered_to_exactly_one_manager(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    # A short claim lease: an unacknowledged claim would be delivered again in the test.
    managers = [
        await started(opened, RedisOrchestrator(server.config(), prefix="once:", claim_lease=0.5))
        for _ in range(3)
    ]
    received: collections.Counter[str] = collections.Counter()
    values: dict[str, str | None] = {}
    all_in, end = asyncio.Event(), asyncio.Event()
    n = 300

    def recorder() -> object:
        async def on_event(event: KeyEvent) -> None:
            if event.kind is KeyEventKind.EXPIRE:
                received[event.key] += 1
                values[event.key] = event.value
                if len(received) == n + 1:
                    all_in.set()
                if event.key == "job/end":
                    end.set()

        return on_event

    for m in managers:
        m.subscribe("job/", recorder())  # type: ignore[arg-type]
    for i in range(n):
        await managers[i % 3].set(f"job/{i}", f"v{i}", expiration=0.3)
    # Expires after all the others, so once it arrives every sweep has passed them.
    await managers[0].set("job/last", "last", expiration=0.8)
    async with asyncio.timeout(WAIT):
        await all_in.wait()
    # Expires after the lease of every claim above ran out.
    await managers[1].set("job/end", "end", expiration=1.0)
    async with asyncio.timeout(WAIT):
        await end.wait()
    assert {k: c for k, c in received.items() if c != 1} == {}
    assert all(values[f"job/{i}"] == f"v{i}" for i in range(n))


async def test_expiry_passed_while_no_manager_ran_is_delivered_at_start(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    first = await started(opened, RedisOrchestrator(server.config(), prefix="restart:"))
    await first.set("job/1", "payload", expiration=0.5)
    await first.close()  # the manager dies before the deadline
    await asyncio.sleep(0.7)  # deadline passes with no manager running
    second = RedisOrchestrator(server.config(), prefix="restart:")
    rec = Recorder()
    second.subscribe("", rec)
    await started(opened, second)
    assert (await rec.wait_for(KeyEventKind.EXPIRE, "job/1")).value == "payload"


async def test_expiry_of_a_manager_that_dies_while_handling_it_is_delivered_again(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    dying = await started(
        opened, RedisOrchestrator(server.config(), prefix="lease:", claim_lease=0.5)
    )
    got_it = asyncio.Event()

    async def stuck(event: KeyEvent) -> None:
        got_it.set()
        await asyncio.Event().wait()  # never finishes handling it

    dying.subscribe("job/", stuck)
    await dying.set("job/1", "payload", expiration=0.1)
    async with asyncio.timeout(WAIT):
        await got_it.wait()
    await dying.close()  # dies mid-callback

    survivor = RedisOrchestrator(server.config(), prefix="lease:")
    rec = Recorder()
    survivor.subscribe("job/", rec)
    await started(opened, survivor)
    assert (await rec.wait_for(KeyEventKind.EXPIRE, "job/1")).value == "payload"


async def test_recreating_an_expired_key_before_the_sweep_keeps_its_expire(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    # Not started: no sweep runs, as when every manager is down; Redis's own TTL
    # removes the value while the deadline stays recorded.
    writer = RedisOrchestrator(server.config(), prefix="settle:")
    rec = Recorder()
    writer.subscribe("", rec)
    await writer.set("k", "old", expiration=0.05)
    await asyncio.sleep(0.2)
    assert await writer.get("k") is None
    assert await writer.set("k", "new", overwrite=False) is True
    await rec.wait_for(KeyEventKind.EXPIRE, "k")
    await asyncio.sleep(0)  # the CREATE callback task was started right after
    assert [(e.kind, e.value) for e in rec.of("k")] == [
        (KeyEventKind.CREATE, "old"),
        (KeyEventKind.EXPIRE, "old"),
        (KeyEventKind.CREATE, "new"),
    ]
    await writer.close()


async def test_touches_at_once_each_get_their_own_answer(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    """Heartbeats arrive by the thousand; their touches travel together, and each still
    learns whether its key was there, and only keys that were there live on."""
    a = await started(opened, RedisOrchestrator(server.config(), prefix="touch:"))
    rec = Recorder()
    a.subscribe("", rec)
    live = [f"job/{i}" for i in range(0, 1200, 2)]
    # the first expiry leaves room for a loaded machine to write and touch 1,200 keys
    first_expiry = 3.0
    await asyncio.gather(*(a.set(key, "v", expiration=first_expiry) for key in live))
    written = time.monotonic()
    keys = [f"job/{i}" for i in range(1200)]
    touched = await asyncio.gather(*(a.touch(k, 30) for k in keys))
    assert [k for k, t in zip(keys, touched, strict=True) if t] == live
    assert await a.get_prefixed("job/") == dict.fromkeys(live, "v")
    # pushed out: past the first expiry, nothing expired and the values are still there
    await asyncio.sleep(max(0.0, written + first_expiry + 1.0 - time.monotonic()))
    assert [e for e in rec.events if e.kind is KeyEventKind.EXPIRE] == []
    assert len(await a.get_prefixed("job/")) == len(live)
    ttl = admin(server).pttl("touch:job/0")
    assert 25_000 < ttl <= 30_000


async def test_writes_at_once_each_get_their_own_answer_even_after_a_script_flush(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    """Writes made together share a pipeline; each is still atomic and answered alone
    (two creates of one key: one wins), and a Redis that lost its scripts (restarted,
    SCRIPT FLUSH) is given them again without the callers noticing."""
    a = await started(opened, RedisOrchestrator(server.config(), prefix="many:"))
    keys = [f"job/{i % 300}" for i in range(600)]  # each key created twice at once
    created = await asyncio.gather(*(a.set(k, str(i), overwrite=False)
                                     for i, k in enumerate(keys)))
    assert sum(created) == 300
    winners = {k: str(i) for i, (k, c) in enumerate(zip(keys, created, strict=True)) if c}
    assert await a.get_prefixed("job/") == winners
    admin(server).script_flush()
    swapped = await asyncio.gather(*(a.compare_and_set(k, v, v + "!")
                                     for k, v in winners.items()),
                                   a.compare_and_set("job/0", "wrong", "x"))
    assert swapped == [True] * 300 + [False]
    assert await a.get("job/0") == winners["job/0"] + "!"


async def test_redis_restart_fails_cleanly_then_recovers(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    a = await started(opened, RedisOrchestrator(server.config(), prefix="outage:"))
    b = await started(opened, RedisOrchestrator(server.config(), prefix="outage:"))
    rec = Recorder()
    b.subscribe("", rec)
    await a.set("before", "1")
    await rec.wait_for(KeyEventKind.CREATE, "before")

    server.kill()
    with pytest.raises(OrchestratorError, match=f"127.0.0.1:{server.port}"):
        await a.set("during", "1")
    with pytest.raises(OrchestratorError, match=f"127.0.0.1:{server.port}"):
        await a.touch("before", 5)
    with pytest.raises(OrchestratorError):
        await b.get("before")
    assert await a.healthy() is False
    await asyncio.sleep(0.3)  # let the background tasks hit the outage too

    server.start()  # same port, all data lost
    await eventually(a.healthy)
    await eventually(b.healthy)
    assert await a.get("before") is None
    # The restarted server forgot its notification settings; they were set again.
    flags = str(admin(server).config_get("notify-keyspace-events")["notify-keyspace-events"])
    assert set(flags) >= set("Kx")
    await a.set("after", "2")
    assert (await rec.wait_for(KeyEventKind.CREATE, "after")).value == "2"
    await a.set("exp", "3", expiration=0.2)
    assert (await _either(a, b, rec, "exp")).value == "3"


async def test_a_brief_outage_nobody_called_into_is_still_announced_once_events_are_back(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    """A cancel published while a manager's subscription was down is lost to it; the
    manager learns that events were missed even if it made no call during the outage."""
    a = await started(opened, RedisOrchestrator(server.config(), prefix="missed:"))
    missed: list[float] = []
    announced = asyncio.Event()

    def on_missed() -> None:
        missed.append(time.monotonic())
        announced.set()

    a.on_events_missed(on_missed)
    await asyncio.sleep(0.2)
    assert missed == []  # a subscription that never broke missed nothing

    server.kill()
    server.start()
    back = time.monotonic()
    async with asyncio.timeout(WAIT * 2):
        await announced.wait()
    assert len(missed) == 1 and missed[0] >= back
    rec = Recorder()
    a.subscribe("", rec)
    await a.set("after", "1")  # the subscription it announced is working
    await rec.wait_for(KeyEventKind.CREATE, "after")


async def _either(a: RedisOrchestrator, b: RedisOrchestrator, rec: Recorder, key: str) -> KeyEvent:
    rec_a = Recorder()
    a.subscribe(key, rec_a)
    done, pending = await asyncio.wait(
        [
            asyncio.ensure_future(rec.wait_for(KeyEventKind.EXPIRE, key)),
            asyncio.ensure_future(rec_a.wait_for(KeyEventKind.EXPIRE, key)),
        ],
        return_when=asyncio.FIRST_COMPLETED,
    )
    for p in pending:
        p.cancel()
    return done.pop().result()


async def test_password(opened: list[RedisOrchestrator]) -> None:
    secret = "s3cret-Pa55word"
    s = RedisServer(password=secret)
    s.start()
    try:
        o = await started(opened, RedisOrchestrator(s.config(), prefix="pw:"))
        await o.set("k", "v")
        assert await o.get("k") == "v"
        for wrong in ("not-the-password", None):
            bad = RedisOrchestrator(s.config(REDIS_PASSWORD=wrong), prefix="pw:")
            with pytest.raises(OrchestratorError) as info:
                await bad.start()
            await bad.close()
            message = str(info.value)
            assert "REDIS_PASSWORD" in message or "NOAUTH" in message or "auth" in message
            assert secret not in message
            assert "not-the-password" not in message
    finally:
        s.close()


async def test_tls_with_client_certificate(opened: list[RedisOrchestrator]) -> None:
    s = RedisServer(tls=True, tls_client_auth=True)
    s.start()
    try:
        o = await started(opened, RedisOrchestrator(s.config(), prefix="tls:"))
        rec = Recorder()
        o.subscribe("", rec)
        await o.set("k", "v", expiration=0.2)
        assert (await rec.wait_for(KeyEventKind.EXPIRE, "k")).value == "v"

        no_cert = RedisOrchestrator(s.config(REDIS_CERT_AND_KEY=None), prefix="tls:")
        with pytest.raises(OrchestratorError):
            await no_cert.start()
        await no_cert.close()

        other_ca = s.dir / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        untrusted = RedisOrchestrator(s.config(REDIS_CA_CERT=str(other_ca)), prefix="tls:")
        with pytest.raises(OrchestratorError, match="certificate"):
            await untrusted.start()
        await untrusted.close()

        plain = RedisOrchestrator(s.config(REDIS_SSL=False), prefix="tls:")
        with pytest.raises(OrchestratorError):
            await plain.start()
        await plain.close()
    finally:
        s.close()


async def test_missing_ca_file_is_a_clear_error(tmp_path: object) -> None:
    s = RedisServer(tls=True)
    try:
        cfg = s.config(REDIS_CA_CERT="/nonexistent/ca.pem")
        with pytest.raises(OrchestratorError, match=r"REDIS_CA_CERT.*not found"):
            RedisOrchestrator(cfg)
    finally:
        s.close()


async def test_internal_keys_are_hidden_and_reserved(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    o = await started(opened, RedisOrchestrator(server.config(), prefix="int:"))
    await o.set("a", "1", expiration=60)
    assert await o.get_prefixed("") == {"a": "1"}
    with pytest.raises(ValueError, match="reserved"):
        await o.set("_deadlines", "x")


async def test_malformed_published_event_is_ignored(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    o = await started(opened, RedisOrchestrator(server.config(), prefix="bad:"))
    rec = Recorder()
    o.subscribe("", rec)
    admin(server).publish("bad:_events", "{not json")
    admin(server).publish("bad:_events", '{"kind": "nope", "key": "x"}')
    other = await started(opened, RedisOrchestrator(server.config(), prefix="bad:"))
    await other.set("ok", "1")
    assert (await rec.wait_for(KeyEventKind.CREATE, "ok")).value == "1"
    assert await o.healthy()


def test_factory_picks_the_implementation(server: RedisServer) -> None:
    executors = [{"EXECUTOR": "local"}]
    memory = create_orchestrator(
        ManagerConfig.model_validate({"EXECUTORS": executors, "ORCHESTRATOR_PREFIX": "m/"})
    )
    assert isinstance(memory, MemoryOrchestrator)
    assert memory.prefix == "m/"
    cfg = ManagerConfig.model_validate(
        {
            "EXECUTORS": executors,
            "ORCHESTRATOR_PREFIX": "r/",
            "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": server.port},
        }
    )
    red = create_orchestrator(cfg)
    assert isinstance(red, RedisOrchestrator)
    assert red.prefix == "r/"


async def test_write_events_no_manager_acts_on_stay_off_the_channel(
    server: RedisServer, opened: list[RedisOrchestrator]
) -> None:
    """Managers are told of a job's end and of cancellations, not of the other writes each
    build makes (a message every manager would read and drop); the writer's own
    subscribers still see every event they asked for."""
    writer = RedisOrchestrator(server.config(), prefix="quiet:", unpublished=UNPUBLISHED_EVENTS)
    everything, job_ends = Recorder(), Recorder()
    writer.subscribe("", everything)
    writer.subscribe("job/", job_ends, (KeyEventKind.DELETE,))
    await started(opened, writer)
    reader = RedisOrchestrator(server.config(), prefix="quiet:", unpublished=UNPUBLISHED_EVENTS)
    heard = Recorder()
    reader.subscribe("", heard)
    await started(opened, reader)

    await writer.set("job/1", "scheduling", expiration=30)
    assert await writer.compare_and_set("job/1", "scheduling", "running", expiration=30)
    await writer.set("deadline/1", "d", expiration=30)
    await writer.set("registered/jti", "1", overwrite=False, expiration=30)
    await writer.set("cancel/b1", "1", expiration=30)
    await writer.delete("job/1")

    await heard.wait_for(KeyEventKind.DELETE, "job/1")  # published last
    assert [(e.kind, e.key) for e in heard.events] == [
        (KeyEventKind.CREATE, "cancel/b1"),
        (KeyEventKind.DELETE, "job/1"),
    ]
    await everything.wait_for(KeyEventKind.DELETE, "job/1")
    assert everything.kinds("job/1") == [KeyEventKind.CREATE, KeyEventKind.SET,
                                         KeyEventKind.DELETE]
    assert [(e.kind, e.key) for e in job_ends.events] == [(KeyEventKind.DELETE, "job/1")]
