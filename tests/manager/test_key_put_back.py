"""The keys a manager puts back once the orchestrator lost them (manager/key_loss.py,
`Attempts.put_back_keys`), with one in-process manager: a running attempt's job key and
deadline come back as they were, and its worker's next heartbeat goes through; an
attempt whose end another manager recorded meanwhile does not come back.

The loss is made as a Redis restarted without its data would make it: every key gone
without an event, and a new epoch. tests/faults/test_redis_restart.py does it with real
managers and a real redis-server.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from support.manager_harness import Harness, ScriptedExecutor, WorkerScript
from support.protocol_worker import ProtocolWorker

from slipway.domain.phases import Phase
from slipway.domain.results import AttemptEnd
from slipway.executors.base import WorkerSpec
from slipway.manager.keys import deadline_key, job_key
from slipway.orchestrator.memory import MemoryOrchestrator
from slipway.protocol import buildman_pb2 as pb

DIGEST = "sha256:" + "cd" * 32
# nothing expires by itself during these tests: only the loss removes keys
MANAGER = {"HEARTBEAT_EXPIRY": 60}


def lose_every_key(orchestrator: MemoryOrchestrator) -> None:
    """What a Redis restarted without persistence does: no key, no event, a new epoch."""
    for key, entry in list(orchestrator._store.items()):
        orchestrator._remove(key, entry)
    orchestrator._epoch = uuid.uuid4().hex


async def start(tmp_path: Path, worker: WorkerScript) -> tuple[Harness, ScriptedExecutor]:
    harness = Harness(tmp_path, manager=MANAGER)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    return harness, executor


async def test_a_running_attempt_gets_its_keys_back_and_its_heartbeat_goes_through(
    tmp_path: Path,
) -> None:
    harness: Harness
    building = asyncio.Event()
    go_on = asyncio.Event()
    replies: list[bool] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        assert (await w.set_phase(pb.BUILDING)).success
        building.set()
        await go_on.wait()
        replies.extend(await w.heartbeat())  # the first call after the loss
        assert (await w.set_phase(pb.PUSHING)).success
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await asyncio.wait_for(building.wait(), 20)
        job_id = (await harness.build(build_id)).job_id
        assert job_id is not None
        before = await harness.orchestrator.get(job_key(job_id))
        assert before is not None and '"running"' in before

        lose_every_key(harness.orchestrator)
        go_on.set()

        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert replies == [True]
        assert record.phase is Phase.COMPLETE
        assert [a.outcome for a in record.attempts] == ["completed"]
    finally:
        await harness.stop()


async def test_the_put_back_keys_are_those_the_attempt_had(tmp_path: Path) -> None:
    harness: Harness
    building = asyncio.Event()

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        assert (await w.set_phase(pb.BUILDING)).success
        building.set()
        await asyncio.sleep(3600)

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await asyncio.wait_for(building.wait(), 20)
        job_id = (await harness.build(build_id)).job_id
        assert job_id is not None
        before = await harness.orchestrator.get(job_key(job_id))

        lose_every_key(harness.orchestrator)
        assert await harness.manager.ctx.attempts.key_loss.check() is True

        assert await harness.orchestrator.get(job_key(job_id)) == before
        assert await harness.orchestrator.get(deadline_key(job_id)) is not None
        assert (await harness.build(build_id)).phase is Phase.BUILDING
    finally:
        await harness.stop()


async def test_an_attempt_another_manager_ended_is_not_put_back(tmp_path: Path) -> None:
    harness: Harness
    starts: list[str] = []
    building = asyncio.Event()
    go_on = asyncio.Event()
    replies: list[bool] = []

    async def worker(spec: WorkerSpec) -> None:
        starts.append(spec.job_id)
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        if len(starts) == 1:
            building.set()
            await go_on.wait()
            replies.extend(await w.heartbeat())
            await asyncio.sleep(3600)
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await asyncio.wait_for(building.wait(), 20)
        attempts = harness.manager.ctx.attempts
        job = attempts.job(starts[0])
        assert job is not None

        lose_every_key(harness.orchestrator)
        # another manager ended it (its key's expiry, say) and wrote that end before
        # the loss reached this one: the database has the attempt closed
        await attempts._record_end(job, AttemptEnd.HEARTBEAT_LOST, "", None)
        go_on.set()

        # the reconciler retries it once its key was missing on two passes, 10 s apart at
        # this HEARTBEAT_EXPIRY: up to 20 s before the second attempt starts
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR,
                                          within=90)
        assert replies == [False]  # its worker is told its job ended
        assert [a.outcome for a in record.attempts] == ["heartbeat_lost", "completed"]
        assert await harness.orchestrator.get(job_key(starts[0])) is None
    finally:
        await harness.stop()
