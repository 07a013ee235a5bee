"""Redis orchestrator for several managers sharing keys, locks and events.

Every write is one Lua script (redis_scripts.py), so there is no check-then-set race.
Expiry cannot be lost: each expiring key's deadline sits in a sorted set and its value
in a shadow hash; a sweep task claims overdue deadlines atomically, so exactly one
manager emits each EXPIRE, whether or not Redis keyspace notifications are on (when
on, they only wake the sweep early). CREATE/SET/DELETE are published by the writer on
a channel and delivered to subscribers in every manager (the writer delivers its own
directly). The pub/sub and sweep tasks ride out Redis outages and recover by themselves
(the subscription and `notify-keyspace-events` are set up again on a Redis that restarted
without them). `epoch` tells a Redis that lost its keys from one that kept them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from slipway.backoff import Backoff
from slipway.group_calls import GroupedCalls
from slipway.orchestrator import redis_scripts as lua
from slipway.orchestrator.base import (
    EventCallback,
    KeyEvent,
    KeyEventKind,
    Orchestrator,
    OrchestratorError,
    UnpublishedEvents,
)
from slipway.orchestrator.memory import check_expiration
from slipway.orchestrator.redis_client import (
    RedisSettings,
    connect,
    describe_error,
    glob_escape,
    merge_keyspace_flags,
)
from slipway.orchestrator.subscribers import Subscribers
from slipway.secret import reveal

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0  # longest the sweep sleeps; it wakes earlier for known deadlines
SWEEP_BATCH = 500
ACK_BATCH = 1000
TOUCH_BATCH = 500  # keys per script call: bounded, as a script holds Redis while it runs
# a touch waits this long for others to share its round trip: nothing next to a heartbeat
# interval of seconds, and under load many touches then go in each call
TOUCH_LINGER = 0.005
SCRIPT_BATCH = 100  # write scripts per pipeline
CLOSE_ACK_WAIT = 2.0
RETRY_FIRST = 0.1  # first pause after Redis failed, doubling up to MAX_BACKOFF
MAX_BACKOFF = 5.0
START_TIMEOUT = 10.0
CLAIM_LEASE = 60.0  # an EXPIRE not handled within this is delivered again
_INTERNAL = ("_deadlines", "_shadow", "_claims", "_claimed", "_events", "_epoch")
# (script name, keys, arguments)
_ScriptCall = tuple[str, list[str], list[Any]]
_ALL = frozenset(KeyEventKind)
# the events each write script may publish
_PUBLISHES = {
    "SET": frozenset({KeyEventKind.CREATE, KeyEventKind.SET}),
    "COMPARE_AND_SET": frozenset({KeyEventKind.CREATE, KeyEventKind.SET}),
    "DELETE": frozenset({KeyEventKind.DELETE}),
    "LOCK": frozenset({KeyEventKind.CREATE}),
    "UNLOCK": frozenset({KeyEventKind.DELETE}),
}


class RedisOrchestrator(Orchestrator):
    def __init__(
        self,
        config: RedisSettings,
        prefix: str = "",
        *,
        claim_lease: float = CLAIM_LEASE,
        unpublished: UnpublishedEvents | None = None,
    ) -> None:
        """`unpublished`: write events no process acts on, which the scripts then do not
        publish: every process reads every message on the channel, its own included."""
        self.prefix = prefix
        self._unpublished = {p: frozenset(k) for p, k in (unpublished or {}).items()}
        self._lease_ms = _ms(claim_lease)
        self._cfg = config
        self._password = reveal(config.REDIS_PASSWORD)
        self._where = f"Redis at {config.REDIS_HOST}:{config.REDIS_PORT} (db {config.REDIS_DB})"
        self._deadlines = prefix + "_deadlines"
        self._shadow = prefix + "_shadow"
        self._claims = prefix + "_claims"
        self._claimed = prefix + "_claimed"
        self._channel = prefix + "_events"
        self._epoch = prefix + "_epoch"
        self._keyspace_pattern = f"__keyspace@{config.REDIS_DB}__:{glob_escape(prefix)}*"
        self._id = uuid.uuid4().hex  # to skip our own published events
        self._redis = connect(config, self._password)
        self._scripts = {
            name: self._redis.register_script(getattr(lua, name))
            for name in (
                "SET",
                "COMPARE_AND_SET",
                "TOUCH_MANY",
                "DELETE",
                "LOCK",
                "UNLOCK",
                "SWEEP",
                "ACK",
                "EPOCH",
            )
        }
        self._subs = Subscribers()
        # every heartbeat is a touch: they go to Redis together, a script call for many
        self._touches = GroupedCalls(self._touch_many, TOUCH_BATCH, TOUCH_LINGER)
        self._script_calls = GroupedCalls(self._run_scripts, SCRIPT_BATCH)
        self._tasks: list[asyncio.Task[None]] = []
        self._acks: set[asyncio.Task[None]] = set()
        self._to_ack: list[str] = []
        self._ack_flusher: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._wake = asyncio.Event()
        self._sweep_at = 0.0  # loop time of the sweep's next planned run
        self._closed = False

    # -- errors ------------------------------------------------------------------------
    def _describe(self, exc: BaseException) -> str:
        return describe_error(self._where, self._password, exc)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if self._closed:
            raise OrchestratorError("the Redis orchestrator is closed")
        try:
            yield
        except (RedisError, OSError) as exc:
            raise OrchestratorError(self._describe(exc)) from None

    def _key(self, key: str) -> str:
        if key in _INTERNAL:
            raise ValueError(f"orchestrator key {key!r} is reserved for slipway's own use")
        return self.prefix + key

    async def _script(self, name: str, key: str, *args: str | int | float) -> Any:
        keys = [self._key(key), self._deadlines, self._shadow, self._claims, self._claimed]
        channel = "" if self._unannounced(name, key) else self._channel  # "": no PUBLISH
        with self._guard():
            return await self._script_calls.call(
                (name, keys, [key, channel, self._id, self._lease_ms, *args])
            )

    def _unannounced(self, script: str, key: str) -> bool:
        return any(key.startswith(prefix) and _PUBLISHES.get(script, _ALL) <= kinds
                   for prefix, kinds in self._unpublished.items())

    async def _run_scripts(self, calls: list[_ScriptCall]) -> list[Any]:
        """Script calls made while others were out, in one pipeline: one round trip for
        all (each script is atomic on its own, as when sent alone): under a scheduling
        burst the round trips, not the scripts, are what Redis costs the manager. An
        error is returned in its call's place, so it fails that call only."""
        if len(calls) == 1:
            name, keys, args = calls[0]
            return [await self._scripts[name](keys=keys, args=args)]
        pipe = self._redis.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for i, (result, (name, keys, args)) in enumerate(zip(results, calls, strict=True)):
            if isinstance(result, NoScriptError):  # Redis restarted: its script cache is empty
                results[i] = await self._scripts[name](keys=keys, args=args)
        return results

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        self._closed = False
        with self._guard():
            await self._redis.ping()
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-orchestrator-pubsub"),
            asyncio.create_task(self._sweep(), name="redis-orchestrator-sweep"),
        ]
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await self._subscribed.wait()
        except TimeoutError:
            await self.close()
            raise OrchestratorError(f"{self._where}: could not subscribe to events") from None

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        # The loops also watch _closed: redis-py may swallow a cancellation mid-command.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        # Callbacks cut short are not acknowledged: their EXPIREs will be delivered again.
        await self._subs.close()
        closed = OrchestratorError("the Redis orchestrator is closed")
        await self._touches.close(closed)
        await self._script_calls.close(closed)
        # Still acknowledge what was handled, briefly; the rest is delivered again.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_ACK_WAIT):
                while self._acks:
                    await asyncio.gather(*list(self._acks), return_exceptions=True)
        for task in list(self._acks):
            task.cancel()
        await asyncio.gather(*self._acks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def healthy(self) -> bool:
        if self._closed or not self._subscribed.is_set():
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    def subscribe(self, prefix: str, callback: EventCallback,
                  kinds: Collection[KeyEventKind] | None = None) -> None:
        self._subs.add(prefix, callback, kinds)

    def on_events_missed(self, callback: Callable[[], None]) -> None:
        self._subs.add_missed(callback)

    # -- operations --------------------------------------------------------------------
    async def epoch(self) -> str:
        with self._guard():
            return str(await self._scripts["EPOCH"](keys=[self._epoch], args=[uuid.uuid4().hex]))

    async def get(self, key: str) -> str | None:
        with self._guard():
            value = await self._redis.get(self._key(key))
        return None if value is None else str(value)

    async def get_prefixed(self, prefix: str) -> dict[str, str]:
        match = glob_escape(self.prefix + prefix) + "*"
        internal = {self.prefix + name for name in _INTERNAL}
        out: dict[str, str] = {}
        with self._guard():
            batch: list[str] = []
            async for full in self._redis.scan_iter(match=match, count=1000):
                if full not in internal:
                    batch.append(full)
            for i in range(0, len(batch), 1000):
                chunk = batch[i : i + 1000]
                for full, value in zip(chunk, await self._redis.mget(chunk), strict=True):
                    if value is not None:  # expired or deleted since the scan
                        out[full[len(self.prefix) :]] = str(value)
        return out

    async def set(
        self,
        key: str,
        value: str,
        *,
        overwrite: bool = True,
        expiration: float | None = None,
    ) -> bool:
        check_expiration(expiration)
        res = await self._script("SET", key, value, "1" if overwrite else "0", _ms(expiration))
        return self._after_write(key, value, res, expiration)

    async def compare_and_set(
        self, key: str, expected: str | None, value: str, *, expiration: float | None = None
    ) -> bool:
        check_expiration(expiration)
        res = await self._script(
            "COMPARE_AND_SET",
            key,
            "0" if expected is None else "1",
            expected or "",
            value,
            _ms(expiration),
        )
        return self._after_write(key, value, res, expiration)

    async def touch(self, key: str, expiration: float) -> bool:
        check_expiration(expiration)
        full = self._key(key)  # refuses a reserved key before anything is queued
        with self._guard():
            done = await self._touches.call((_ms(expiration), key, full))
        if done:
            self._deadline_hint(expiration)
        return done

    async def _touch_many(self, touches: list[tuple[int, str, str]]) -> list[bool]:
        """One script call per expiration (in practice all touches share one)."""
        answers: dict[int, bool] = {}
        by_ms: dict[int, list[int]] = {}
        for index, (ms, _, _) in enumerate(touches):
            by_ms.setdefault(ms, []).append(index)
        for ms, indexes in by_ms.items():
            touched = await self._scripts["TOUCH_MANY"](
                keys=[self._deadlines, self._shadow, *(touches[i][2] for i in indexes)],
                args=[ms, *(touches[i][1] for i in indexes)],
            )
            answers.update(zip(indexes, (bool(t) for t in touched), strict=True))
        return [answers[i] for i in range(len(touches))]

    async def delete(self, key: str) -> bool:
        res = await self._script("DELETE", key)
        if not res[0]:
            return False
        self._subs.dispatch(KeyEvent(KeyEventKind.DELETE, key, res[1]))
        return True

    async def lock(self, key: str, owner: str, expiration: float) -> bool:
        check_expiration(expiration)
        res = await self._script("LOCK", key, owner, _ms(expiration))
        return self._after_write(key, owner, res, expiration)

    async def unlock(self, key: str, owner: str) -> bool:
        if not await self._script("UNLOCK", key, owner):
            return False
        self._subs.dispatch(KeyEvent(KeyEventKind.DELETE, key, owner))
        return True

    def _after_write(self, key: str, value: str, res: list[Any], exp: float | None) -> bool:
        """Deliver what a write script did locally: [written, kind or nil, settled EXPIRE]."""
        written, kind, expired = [*res, None, None][:3]
        if expired is not None:
            self._deliver_expire(key, expired)
        if kind:
            self._subs.dispatch(KeyEvent(KeyEventKind(kind), key, value))
        if written and exp is not None:
            self._deadline_hint(exp)
        return bool(written)

    def _deadline_hint(self, expiration: float) -> None:
        """Wake the sweep when a deadline we just set comes before its next run."""
        if asyncio.get_running_loop().time() + expiration < self._sweep_at:
            self._wake.set()

    # -- background tasks ----------------------------------------------------------------
    async def _setup_keyspace_events(self) -> None:
        try:
            reply = await self._redis.config_get("notify-keyspace-events")
            current = str(reply.get("notify-keyspace-events") or "")
            wanted = merge_keyspace_flags(current)
            if wanted != current:
                await self._redis.config_set("notify-keyspace-events", wanted)
                log.info("set Redis notify-keyspace-events to %r (was %r)", wanted, current)
        except ResponseError as exc:
            # Expiry still works through the sweep; notifications only make it quicker.
            log.warning(
                "%s: cannot set notify-keyspace-events (%s); expiry falls back to the "
                "periodic sweep. Set ORCHESTRATOR.REDIS_SKIP_KEYSPACE_EVENT_SETUP: true "
                "when the server does not allow CONFIG.",
                self._where,
                exc,
            )

    async def _listen(self) -> None:
        backoff = Backoff(RETRY_FIRST, MAX_BACKOFF)
        down = False
        while not self._closed:
            pubsub = self._redis.pubsub()
            try:
                if not self._cfg.REDIS_SKIP_KEYSPACE_EVENT_SETUP:
                    await self._setup_keyspace_events()  # again after a restart lost it
                await pubsub.subscribe(self._channel)
                await pubsub.psubscribe(self._keyspace_pattern)
                confirmations = 0
                while not self._closed:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    kind = msg["type"]
                    if kind == "message":
                        self._on_published(msg["data"])
                    elif kind == "pmessage":
                        if msg["data"] == "expired":
                            self._wake.set()
                    elif kind in ("subscribe", "psubscribe"):
                        confirmations += 1
                        if confirmations >= 2:
                            backoff.reset()
                            self._subscribed.set()
                            self._wake.set()  # catch up on deadlines passed meanwhile
                            if down:
                                log.warning("%s: event subscription restored", self._where)
                                down = False
                                # what other processes published meanwhile is lost
                                self._subs.missed()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                if not down:
                    log.warning(
                        "%s: event subscription lost, retrying: %s",
                        self._where,
                        self._describe(exc),
                    )
                down = True
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            pause = backoff.next()
            if not self._closed:
                await asyncio.sleep(pause)

    def _on_published(self, data: str) -> None:
        try:
            msg = json.loads(data)
            if msg.get("src") == self._id:
                return
            event = KeyEvent(KeyEventKind(msg["kind"]), str(msg["key"]), msg.get("value"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: ignoring malformed event on %s", self._where, self._channel)
            return
        self._subs.dispatch(event)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(RETRY_FIRST, MAX_BACKOFF)
        failing = False
        while not self._closed:
            self._wake.clear()
            wait = SWEEP_INTERVAL
            try:
                res = await self._scripts["SWEEP"](
                    keys=[self._deadlines, self._shadow, self._claims, self._claimed],
                    args=[self.prefix, SWEEP_BATCH, self._lease_ms],
                )
                now, nxt, pairs = float(res[0]), res[1], res[2:]
                for key, value in zip(pairs[::2], pairs[1::2], strict=True):
                    self._deliver_expire(key, value)
                if failing:
                    log.warning("%s: expiry sweep working again", self._where)
                failing = False
                backoff.reset()
                if len(pairs) // 2 >= SWEEP_BATCH:  # more may be due
                    wait = 0.0
                elif nxt is not None:
                    wait = min(wait, max(0.0, (float(nxt) - now) / 1000) + 0.001)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning(
                        "%s: expiry sweep failing, retrying: %s", self._where, self._describe(exc)
                    )
                failing, wait = True, backoff.next()
            self._sweep_at = loop.time() + wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _deliver_expire(self, key: str, value: str | None) -> None:
        """Run the callbacks, then acknowledge the claim so it is not delivered again."""
        callbacks = self._subs.dispatch(KeyEvent(KeyEventKind.EXPIRE, key, value))
        task = asyncio.get_running_loop().create_task(self._ack_after(key, callbacks))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack_after(self, key: str, callbacks: list[asyncio.Task[None]]) -> None:
        results = await asyncio.gather(*callbacks, return_exceptions=True)
        if any(isinstance(r, asyncio.CancelledError) for r in results):
            return  # not handled: the lease runs out and it is delivered again
        self._to_ack.append(key)
        if self._ack_flusher is None or self._ack_flusher.done():
            self._ack_flusher = asyncio.get_running_loop().create_task(self._flush_acks())
            self._acks.add(self._ack_flusher)
            self._ack_flusher.add_done_callback(self._acks.discard)

    async def _flush_acks(self) -> None:
        """Acknowledge handled expiries in batches, one round trip for many."""
        while self._to_ack:
            batch, self._to_ack = self._to_ack[:ACK_BATCH], self._to_ack[ACK_BATCH:]
            try:
                await self._scripts["ACK"](keys=[self._claims, self._claimed], args=batch)
            except (RedisError, OSError) as exc:
                log.warning(
                    "%s: could not acknowledge %d handled expiries, they may be delivered "
                    "again: %s",
                    self._where,
                    len(batch),
                    self._describe(exc),
                )


def _ms(expiration: float | None) -> int:
    return 0 if expiration is None else max(1, round(expiration * 1000))
