"""Every way an attempt ends (manager/attempts.py EndReason) goes through the one
teardown: the build's API record shows how the attempt ended, its worker is stopped, no
job or deadline key is left, the manager no longer counts it (running-workers gauge) and
the build is finished or back in the queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker

from slipway.api.serialize import build_view
from slipway.domain.phases import Phase
from slipway.executors.base import WorkerSpec
from slipway.manager.keys import job_key
from slipway.orchestrator.memory import MemoryOrchestrator
from slipway.protocol import buildman_pb2 as pb

DIGEST = "sha256:" + "cd" * 32
ATTEMPT_KEYS = {"attempt", "executor", "worker_id", "started", "ended", "outcome"}


async def start(tmp_path: Path, script: Any, **manager: Any) -> tuple[Harness, ScriptedExecutor]:
    harness = Harness(tmp_path, manager=manager or None)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=script)
    await harness.start([executor])
    return harness, executor


def api_attempts(harness: Harness, record: Any) -> list[dict[str, Any]]:
    """The build's attempts as the API returns them."""
    return build_view(record).model_dump(mode="json")["attempts"]


def running_workers() -> float | None:
    return REGISTRY.get_sample_value("slipway_running_workers")


async def assert_torn_down(harness: Harness, executor: ScriptedExecutor, *workers: str) -> None:
    """What every end leaves: the workers stopped, no keys, nothing held."""
    await harness.wait_for(lambda: all(w in executor.stopped for w in workers))
    await harness.wait_for(lambda: len(harness.manager.ctx.attempts) == 0)
    assert running_workers() == 0
    assert await harness.orchestrator.get_prefixed("job/") == {}
    assert await harness.orchestrator.get_prefixed("deadline/") == {}
    assert all(task.done() for task in executor.tasks.values())


async def test_a_result_ends_the_attempt_and_finishes_the_build(tmp_path: Path) -> None:
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.BUILDING)
        await w.set_phase(pb.PUSHING)
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success
        await asyncio.sleep(3600)  # cleaning up, until the manager releases it

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE and record.image_digest == DIGEST
        (attempt,) = api_attempts(harness, record)
        assert set(attempt) == ATTEMPT_KEYS  # `counted` only on an attempt given back
        assert (attempt["attempt"], attempt["outcome"], attempt["worker_id"]) == (
            1, "completed", "default-1")
        await assert_torn_down(harness, executor, "default-1")
        assert await harness.store.queue.get_for_build(build_id) is None
    finally:
        await harness.stop()


async def test_an_expired_heartbeat_ends_the_attempt_and_requeues_the_build(
    tmp_path: Path,
) -> None:
    harness: Harness
    starts: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        starts.append(spec.job_id)
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        if len(starts) == 1:
            await asyncio.sleep(3600)  # hangs: no more heartbeats, until it is stopped
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success

    harness, executor = await start(tmp_path, worker, HEARTBEAT_EXPIRY=1)
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE
        assert [(a["attempt"], a["outcome"]) for a in api_attempts(harness, record)] == [
            (1, "heartbeat_lost"), (2, "completed")]
        assert record.retries_remaining == 1  # the lost attempt counted
        messages = [e.message for e in await harness.log(build_id)]
        assert any("Attempt 1 of 3 failed: the build worker stopped sending heartbeats" in m
                   for m in messages)
        await assert_torn_down(harness, executor, "default-1", "default-2")
    finally:
        await harness.stop()


async def test_a_cancel_ends_the_attempt_and_the_build(tmp_path: Path) -> None:
    harness: Harness
    building = asyncio.Event()

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.BUILDING)
        building.set()
        await w.heartbeat_until_refused(interval=0.1)
        await asyncio.sleep(3600)  # a worker that ignores the refusal is stopped anyway

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await asyncio.wait_for(building.wait(), 20)
        assert (await harness.control.cancel(build_id)).value == "cancelled"
        await assert_torn_down(harness, executor, "default-1")
        record = await harness.build(build_id)
        assert record.phase is Phase.CANCELLED
        assert [(a["attempt"], a["outcome"]) for a in api_attempts(harness, record)] == [
            (1, "cancelled")]
        assert await harness.store.queue.get_for_build(build_id) is None
        assert len(executor.started) == 1
    finally:
        await harness.stop()


async def test_a_shutdown_gives_the_attempt_back_and_requeues_the_build(
    tmp_path: Path,
) -> None:
    harness: Harness
    building = asyncio.Event()

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.BUILDING)
        building.set()
        await asyncio.sleep(3600)  # busy, until the manager stops it

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await asyncio.wait_for(building.wait(), 20)
        await harness.manager.shutdown()
        await assert_torn_down(harness, executor, "default-1")
        record = await harness.build(build_id)
        assert record.phase is Phase.WAITING and record.job_id is None
        (attempt,) = api_attempts(harness, record)
        assert (attempt["attempt"], attempt["outcome"], attempt["counted"]) == (
            1, "manager_shutdown", False)
        # back in the queue, its try refunded, for another manager to take at once
        item = await harness.store.queue.get_for_build(build_id)
        assert item is not None and item.processing_expires is None  # not leased
        assert item.retries_remaining == 3
        assert record.retries_remaining == 3
        messages = [e.message for e in await harness.log(build_id)]
        assert any("does not count against the build's tries" in m for m in messages)
    finally:
        await harness.stop()  # a second shutdown finds nothing left to do


async def test_a_lost_job_key_is_ended_by_the_reconciler_and_the_build_requeued(
    tmp_path: Path,
) -> None:
    """The orchestrator loses the job key without an event (Redis restarted without its
    data): the reconciler notices on its passes and ends the attempt."""
    harness: Harness
    starts: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        starts.append(spec.job_id)
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        if len(starts) == 1:
            await w.heartbeat_until_refused(interval=0.1)  # refused once the key is lost
            await asyncio.sleep(3600)
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success

    harness, executor = await start(tmp_path, worker, HEARTBEAT_EXPIRY=2)
    try:
        build_id = await harness.submit()
        await harness.wait_phase(build_id, Phase.BUILD_SCHEDULED)
        await harness.wait_for(lambda: len(starts) == 1)
        key = job_key(starts[0])
        await harness.wait_for(lambda: '"running"' in lost_value(harness.orchestrator, key))
        forget_without_event(harness.orchestrator, key)
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE
        assert [(a["attempt"], a["outcome"]) for a in api_attempts(harness, record)] == [
            (1, "heartbeat_lost"), (2, "completed")]
        messages = [e.message for e in await harness.log(build_id)]
        assert any("the orchestrator lost the job" in m and "retried" in m for m in messages)
        await assert_torn_down(harness, executor, "default-1", "default-2")
    finally:
        await harness.stop()


def lost_value(orchestrator: MemoryOrchestrator, key: str) -> str:
    entry = orchestrator._store.get(key)
    return "" if entry is None else entry.value


def forget_without_event(orchestrator: MemoryOrchestrator, key: str) -> None:
    """Drop a key as a Redis that restarted without its data would: no event."""
    orchestrator._remove(key, orchestrator._store[key])
