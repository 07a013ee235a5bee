"""The build lifecycle end to end: a real manager, real gRPC, a protocol-speaking worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker

from slipway.domain.phases import Phase
from slipway.executors.base import WorkerSpec
from slipway.protocol import buildman_pb2 as pb

DIGEST = "sha256:" + "ab" * 32


async def start(
    tmp_path: Path, script=None, manager=None, **kw
) -> tuple[Harness, ScriptedExecutor]:  # type: ignore[no-untyped-def]
    harness = Harness(tmp_path, manager=manager, **kw)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=script)
    await harness.start([executor])
    return harness, executor


async def test_a_build_runs_from_submit_to_complete(tmp_path: Path) -> None:
    packs: list[pb.BuildPack] = []
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        packs.append(await w.register(spec.registration_token))
        assert await w.heartbeat(2) == [True, True]
        meta = {
            "registry_url": "registry.test:5000",
            "base_image": "busybox",
            "base_image_tag": "latest",
            "pull_username": "",
        }
        assert (await w.set_phase(pb.UNPACKING)).success
        assert (await w.set_phase(pb.PULLING, pull_metadata=meta)).success
        assert (await w.set_phase(pb.BUILDING)).success
        replies = await w.logs(
            [
                {"stream": "Step 1/2 : FROM busybox\n"},
                {"stream": " ---> 1234\n"},
                {"stream": "STEP 2/2: RUN echo hi\n"},
                {"status": "Pulling fs layer", "id": "abc", "progressDetail": {"current": 1}},
                {"error": "warning-ish error line"},
            ]
        )
        assert all(r.success for r in replies)
        assert (await w.set_phase(pb.PUSHING)).success
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success
        await w.close()

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit(tags=("latest", "v1"))
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE
        assert record.image_digest == DIGEST
        assert record.executor == "default"
        pack = packs[0]
        assert pack.repository == "ns/repo"
        assert pack.registry == "registry.test:5000"
        assert list(pack.tag_names) == ["latest", "v1"]
        assert pack.package_url.endswith(f"{build_id}.tar")
        entries = await harness.log(build_id)
        phases = [e.message for e in entries if e.type == "phase"]
        assert phases == [
            "waiting",
            "build-scheduled",
            "unpacking",
            "pulling",
            "building",
            "pushing",
            "complete",
        ]
        pulling = next(e for e in entries if e.type == "phase" and e.message == "pulling")
        assert pulling.data["base_image"] == "busybox"
        commands = [e.message for e in entries if e.type == "command"]
        assert commands == ["Step 1/2 : FROM busybox", "STEP 2/2: RUN echo hi"]
        assert any(e.type == "error" and e.message == "warning-ish error line" for e in entries)
        status = next(e for e in entries if e.message == "Pulling fs layer")
        assert status.data["id"] == "abc"
        # the worker is stopped and no job key is left
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
        assert await harness.orchestrator.get_prefixed("job/") == {}
        assert await harness.orchestrator.get_prefixed("deadline/") == {}
        assert await harness.store.queue.get_for_build(build_id) is None
    finally:
        await harness.stop()


async def test_a_message_of_several_output_lines_is_stored_a_line_each(tmp_path: Path) -> None:
    harness: Harness
    chunk = "STEP 1/2: FROM base\n\nSTEP 2/2: RUN make\ncc -c a.c\n"

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.BUILDING)
        replies = await w.logs([{"stream": chunk}, {"stream": "no newline at the end"}])
        assert [r.success for r in replies] == [True, True]
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success
        await w.close()

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        # the worker's lines (the manager's own entries carry no phase)
        entries = [e for e in await harness.log(build_id) if e.data.get("phase") == "building"]
        assert [(e.message, e.type) for e in entries] == [
            ("STEP 1/2: FROM base", "command"),
            ("", None),
            ("STEP 2/2: RUN make", "command"),
            ("cc -c a.c", None),
            ("no newline at the end", None),
        ]
    finally:
        await harness.stop()


async def test_worker_error_ends_the_build_without_retry(tmp_path: Path) -> None:
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.BUILDING)
        await w.logs([{"error": "RUN false: exit status 1"}])
        assert (await w.set_phase(pb.ERROR, error="RUN false: exit status 1")).success
        await w.close()

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(
            build_id, Phase.ERROR, Phase.COMPLETE, Phase.INTERNAL_ERROR
        )
        assert record.phase is Phase.ERROR
        assert record.error == "RUN false: exit status 1"
        errors = [e.message for e in await harness.log(build_id) if e.type == "error"]
        assert errors == ["RUN false: exit status 1"]  # the worker's line, not repeated
        assert len(executor.started) == 1  # not retried
        assert len(record.attempts) == 1 and record.attempts[0].outcome == "user_error"
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
    finally:
        await harness.stop()


async def test_lost_heartbeat_retries_the_build(tmp_path: Path) -> None:
    harness: Harness
    attempts = []

    async def worker(spec: WorkerSpec) -> None:
        attempts.append(spec.job_id)
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.heartbeat()
        if len(attempts) == 1:
            return  # the worker dies: no more heartbeats
        await w.set_phase(pb.BUILDING)
        await w.set_phase(pb.PUSHING)
        await w.set_phase(pb.COMPLETE, digest=DIGEST)

    harness, executor = await start(tmp_path, worker, manager={"HEARTBEAT_EXPIRY": 1})
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(
            build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR, Phase.ERROR
        )
        assert record.phase is Phase.COMPLETE
        assert len(attempts) == 2
        assert [a.outcome for a in record.attempts] == ["heartbeat_lost", "completed"]
        assert record.retries_remaining == 1
        messages = [e.message for e in await harness.log(build_id)]
        assert any("stopped sending heartbeats" in m and "retried" in m for m in messages)
        await harness.wait_for(lambda: "default-1" in executor.stopped)
    finally:
        await harness.stop()


async def test_machine_max_time_stops_the_build(tmp_path: Path) -> None:
    harness: Harness
    tokens: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        tokens.append(w.job_jwt)
        await w.heartbeat_until_refused(interval=0.1)

    harness, executor = await start(tmp_path, worker, manager={"MACHINE_MAX_TIME": 1})
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        assert record.phase is Phase.INTERNAL_ERROR
        assert "MACHINE_MAX_TIME" in (record.error or "")
        assert len(record.attempts) == 1  # a build that runs too long is not retried
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
        probe = ProtocolWorker(harness.address)
        assert await probe.heartbeat(job_jwt=tokens[0]) == [False]
        await probe.close()
    finally:
        await harness.stop()


@pytest.mark.parametrize("cancel_in", ["build-scheduled", "unpacking", "pulling", "building"])
async def test_cancel_in_each_cancellable_phase(tmp_path: Path, cancel_in: str) -> None:
    harness: Harness
    reached: list[str] = []
    job_tokens: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        if cancel_in != "build-scheduled":
            await w.register(spec.registration_token)
            job_tokens.append(w.job_jwt)
            for phase in (pb.UNPACKING, pb.PULLING, pb.BUILDING):
                await w.set_phase(phase)
                if pb.Phase.Name(phase).lower() == cancel_in:
                    break
        reached.append(cancel_in)
        await asyncio.sleep(3600)  # a busy worker, until it is stopped

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await harness.wait_for(lambda: reached == [cancel_in])
        assert (await harness.build(build_id)).phase.value == cancel_in
        outcome = await harness.control.cancel(build_id)
        assert outcome.value == "cancelled"
        record = await harness.wait_phase(build_id, Phase.CANCELLED)
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
        assert all(task.done() for task in executor.tasks.values())
        if job_tokens:
            # a worker that is still alive is told to stop
            probe = ProtocolWorker(harness.address)
            assert await probe.heartbeat(job_jwt=job_tokens[0]) == [False]
            await probe.close()
        assert await harness.orchestrator.get_prefixed("job/") == {}
        assert await harness.store.queue.get_for_build(build_id) is None
        assert record.completed is not None
        assert len(executor.started) == 1
        assert [e.message for e in await harness.log(build_id) if e.type == "phase"][-1] == (
            "cancelled"
        )
    finally:
        await harness.stop()


async def test_cancel_while_waiting_and_refused_while_pushing(tmp_path: Path) -> None:
    harness: Harness
    pushing = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.set_phase(pb.PUSHING)
        pushing.append(spec.build_id)
        await w.heartbeat_until_refused(interval=0.05)

    harness, _ = await start(tmp_path, worker)  # ALLOWED_WORKER_COUNT 1
    try:
        first = await harness.submit(repository="one")
        await harness.wait_for(lambda: pushing == [first])
        second = await harness.submit(repository="two")  # waits: no capacity
        assert (await harness.build(second)).phase is Phase.WAITING
        assert (await harness.control.cancel(second)).value == "cancelled"
        assert (await harness.build(second)).phase is Phase.CANCELLED
        assert await harness.store.queue.get_for_build(second) is None
        assert (await harness.control.cancel(first)).value == "too_late"
        assert (await harness.build(first)).phase is Phase.PUSHING
    finally:
        await harness.stop()


async def test_out_of_order_sequence_numbers_are_refused(tmp_path: Path) -> None:
    harness: Harness
    results: dict[str, object] = {}

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        results["first"] = (await w.set_phase(pb.UNPACKING, seq=5)).success
        results["same"] = (await w.set_phase(pb.PULLING, seq=5)).success
        results["older"] = (await w.set_phase(pb.BUILDING, seq=4)).success
        results["backwards"] = (await w.set_phase(pb.UNPACKING, seq=9)).success
        results["logs"] = [
            r.success
            for r in await w.logs(
                [{"stream": "a"}, {"stream": "b"}, {"stream": "c"}, "not json"], seqs=[1, 3, 2, 4]
            )
        ]
        results["phase"] = (await harness.build(spec.build_id)).phase

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await harness.wait_for(lambda: "phase" in results)
        assert results["first"] is True
        assert results["same"] is False and results["older"] is False
        assert results["backwards"] is True  # a newer number, same phase again: accepted
        assert results["logs"] == [True, True, False, False]
        assert results["phase"] is Phase.UNPACKING
        messages = [e.message for e in await harness.log(build_id) if e.type is None]
        assert "a" in messages and "b" in messages and "c" not in messages
    finally:
        await harness.stop()


async def test_leaving_a_final_phase_is_refused(tmp_path: Path) -> None:
    harness: Harness
    tokens: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        tokens.append(w.job_jwt)
        await w.set_phase(pb.COMPLETE, digest=DIGEST, seq=1)

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await harness.wait_phase(build_id, Phase.COMPLETE)
        late = ProtocolWorker(harness.address)
        # a retry of the COMPLETE that ended the attempt: "it landed", as any repeat
        assert not (await late.set_phase(pb.COMPLETE, seq=1, digest=DIGEST,
                                         job_jwt=tokens[0])).success
        # anything else of the ended attempt is refused: the worker must stop
        for phase, seq in ((pb.BUILDING, 2), (pb.ERROR, 3)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late.set_phase(phase, seq=seq, error="late", job_jwt=tokens[0])
            assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "this build attempt was ended (completed)" in str(refused.value.details())
        assert await late.heartbeat(job_jwt=tokens[0]) == [False]
        await late.close()
        record = await harness.build(build_id)
        assert record.phase is Phase.COMPLETE and record.error is None
    finally:
        await harness.stop()


async def test_ping(tmp_path: Path) -> None:
    harness, _ = await start(tmp_path)
    try:
        w = ProtocolWorker(harness.address)
        assert (await w.stub.Ping(pb.PingRequest())).reply == "pong"
        await w.close()
    finally:
        await harness.stop()


async def test_unknown_job_gets_unauthenticated(tmp_path: Path) -> None:
    harness, _ = await start(tmp_path)
    try:
        w = ProtocolWorker(harness.address)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.register("not-a-token")
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        await w.close()
    finally:
        await harness.stop()


async def test_a_worker_that_registers_before_its_start_is_recorded_is_served(
    tmp_path: Path,
) -> None:
    """A fast worker may call RegisterBuildJob while the executor's start_worker has not
    returned yet: the registration waits for the start to be recorded, then succeeds."""
    harness: Harness
    registered: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        pack = await w.register(spec.registration_token)
        registered.append(pack.repository)
        await w.set_phase(pb.BUILDING)
        await w.set_phase(pb.COMPLETE, digest=DIGEST)
        await w.close()

    class SlowToReturn(ScriptedExecutor):
        async def start_worker(self, spec: WorkerSpec) -> str:
            worker_id = await super().start_worker(spec)  # the worker runs from here on
            await asyncio.sleep(0.5)  # e.g. a slow cloud API answering after the boot
            assert not registered  # it is still waiting for us
            return worker_id

    harness = Harness(tmp_path)
    executor = SlowToReturn(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE
        assert registered == ["ns/repo"]
        assert executor.errors == []
    finally:
        await harness.stop()


async def test_a_worker_that_finishes_before_its_start_is_recorded(tmp_path: Path) -> None:
    """The worker's start is written in a shared transaction that may still be queued when
    a fast worker completes: the end records the attempt whole, and the late start write
    leaves the finished build alone."""
    harness: Harness
    held = asyncio.Event()
    release = asyncio.Event()

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success
        await w.close()

    harness, executor = await start(tmp_path, worker)
    shared = harness.manager.ctx.shared_writes
    run = shared.run

    async def hold_the_start(write):  # type: ignore[no-untyped-def]
        if getattr(write, "__name__", "") == "record_start":
            held.set()
            await release.wait()
        return await run(write)

    shared.run = hold_the_start  # type: ignore[method-assign]
    try:
        build_id = await harness.submit()
        await held.wait()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        release.set()
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
        await asyncio.sleep(0.2)  # the start write, let go, has run
        record = await harness.build(build_id)
        assert record.phase is Phase.COMPLETE
        (attempt,) = record.attempts
        assert attempt.outcome == "completed"
        assert attempt.worker_id == "default-1"
        assert attempt.started <= attempt.ended
    finally:
        release.set()
        await harness.stop()


async def test_a_worker_registering_after_its_build_was_cancelled_is_refused(
    tmp_path: Path,
) -> None:
    """Registration hands the worker what the manager read when it began the attempt;
    a build cancelled since must not be handed out."""
    harness: Harness
    tokens: list[str] = []

    async def worker(spec: WorkerSpec) -> None:
        tokens.append(spec.registration_token)
        await asyncio.sleep(3600)  # slow to boot: registers only when the test says

    harness, executor = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        await harness.wait_phase(build_id, Phase.BUILD_SCHEDULED)
        await harness.wait_for(lambda: len(tokens) == 1)
        assert (await harness.control.cancel(build_id)).value == "cancelled"
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
        late = ProtocolWorker(harness.address)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await late.register(tokens[0])
        await late.close()
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        record = await harness.build(build_id)
        assert record.phase is Phase.CANCELLED
        assert "Build worker registered" not in [e.message for e in await harness.log(build_id)]
        assert harness.manager.ctx.attempts.begun_records() == {}
    finally:
        await harness.stop()


async def test_a_registration_cut_by_a_database_outage_can_be_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BuildPack's reads (credentials, secrets) meet a database outage: the worker is
    told UNAVAILABLE, and its retry with the same registration token gets its pack; the
    attempt is not left running with a worker that was refused."""
    from slipway.manager import worker_calls
    from slipway.store.errors import StoreUnavailable

    real_assemble = worker_calls.assemble_build_pack
    outages = [StoreUnavailable("the database is not answering")]

    async def assemble_once_cut(*args, **kwargs):  # type: ignore[no-untyped-def]
        if outages:
            raise outages.pop()
        return await real_assemble(*args, **kwargs)

    monkeypatch.setattr(worker_calls, "assemble_build_pack", assemble_once_cut)
    answers: list[str] = []
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await w.register(spec.registration_token)
        answers.append(cut.value.code().name)
        await w.register(spec.registration_token)  # the worker's retry
        answers.append("registered")
        assert (await w.set_phase(pb.BUILDING)).success
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success
        await w.close()

    harness, _ = await start(tmp_path, worker)
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.COMPLETE)
        assert answers == ["UNAVAILABLE", "registered"]
        assert [a.outcome.value for a in record.attempts if a.outcome] == ["completed"]
    finally:
        await harness.stop()
