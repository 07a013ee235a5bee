"""QUEUE_TTL (issue 29): a build still waiting for its first attempt past its queue TTL
ends `expired` (an `internalerror` with no tries left) saying how long it waited; one
that started in time is never expired."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.enqueue import enqueue
from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker

from slipway.api.serialize import api_phase
from slipway.domain.phases import Phase
from slipway.executors.base import WorkerSpec
from slipway.manager import queue_expiry
from slipway.manager.admission import Admission, Submission
from slipway.manager.queue_expiry import QueueExpiry
from slipway.store.records import NewBuild


def _new(repository: str, namespace: str = "ns") -> NewBuild:
    return NewBuild(namespace=namespace, repository=repository, tags=["latest"],
                    registry="registry.test:5000")


async def test_a_build_waiting_past_its_ttl_expires_and_one_that_started_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_expiry, "LOOK_EVERY_SECONDS", 0.1)
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.heartbeat_until_refused(interval=0.1)

    # one build at a time in the namespace: the second waits behind the first
    harness = Harness(tmp_path, manager={"NAMESPACE_LIMITS": {"ns": 1}},
                      top={"QUEUE_TTL": {"NAMESPACES": {"ns": 1}}})
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    try:
        admission = Admission(harness.config, harness.store, harness.control)
        first = (await admission.submit(Submission(_new("one")))).record.id
        await harness.wait_for(lambda: executor.started != [])
        second = (await admission.submit(Submission(_new("two")))).record.id
        expired = await harness.wait_phase(second, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        expected = ("the build waited 1s in the queue (QUEUE_TTL.NAMESPACES.ns) without "
                    "starting; submit it again or raise QUEUE_TTL.NAMESPACES.ns")
        assert expired.error == expected
        assert api_phase(expired) == "expired"  # Quay's phase for it
        assert expired.attempts == [] and expired.completed is not None
        assert await harness.store.queue.get_for_build(second) is None
        entries = await harness.log(second)
        assert [e.message for e in entries if e.type == "error"] == [expected]
        assert [e.message for e in entries if e.type == "phase"] == ["waiting", "internalerror"]
        # the first, which started within its TTL, runs on past it
        running = await harness.build(first)
        assert not running.phase.is_final and running.error is None
        assert running.options["queue_ttl"] == {"seconds": 1, "set_by": "QUEUE_TTL.NAMESPACES.ns"}
    finally:
        await harness.stop()


async def test_a_build_claimed_before_the_look_is_left_to_run(tmp_path: Path) -> None:
    """The race of a claim and the expiry: the claim clears the item's start_by, and the
    expiry removes an item only while it still waits."""
    harness = Harness(tmp_path)
    await harness.start([])  # no executor: the test claims by hand
    try:
        harness.manager.scheduler.paused = True
        record = await enqueue(harness.control, NewBuild(
            namespace="ns", repository="repo", tags=["latest"], registry="registry.test:5000",
            options={"queue_ttl": {"seconds": 5, "set_by": "submission"}}))
        later = time.time() + 60
        assert [i.build_id for i in await harness.store.queue.due_to_expire(later, 10)] == [
            record.id]
        assert await harness.store.queue.due_to_expire(time.time(), 10) == []  # not yet due
        [item] = await harness.store.queue.claim("someone", limit=1, lease_seconds=30)
        assert await harness.store.queue.due_to_expire(later, 10) == []
        async with harness.store.write() as conn:
            assert not await harness.store.queue.expire(conn, item.id, later)
        assert await QueueExpiry(harness.store).look(later) == 0
        assert (await harness.build(record.id)).phase is Phase.WAITING
    finally:
        await harness.stop()


async def test_the_ttl_given_at_submission_is_named_with_its_fix(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    await harness.start([])
    try:
        harness.manager.scheduler.paused = True
        record = await enqueue(harness.control, NewBuild(
            namespace="ns", repository="repo", tags=["latest"], registry="registry.test:5000",
            options={"queue_ttl": {"seconds": 600, "set_by": "submission"}}))
        assert await QueueExpiry(harness.store).look(time.time() + 601) == 1
        ended = await harness.build(record.id)
        assert ended.error == ("the build waited 10m in the queue (its queue_ttl, set at "
                               "submission) without starting; submit it again with a "
                               "longer queue_ttl")
        assert ended.retries_remaining == 0
    finally:
        await harness.stop()
