"""Partitions between a worker and its manager (issue 25): a worker cut off for less
than HEARTBEAT_EXPIRY carries on, its log lines delivered once after the cut; cut off
longer, its attempt ends once, the build runs again on another worker, and the old
worker, when the cut heals, is refused and stops.

slipway's own worker client (registration, heartbeats, the Reporter's log stream and
phases, its retries) runs a scripted build; each worker reaches the manager through a
TCP proxy of its own, which the test cuts (every connection dropped, nothing accepted)
and heals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest
from support.fault_figures import FaultFigures
from support.manager_harness import Harness, ScriptedExecutor
from support.partitioned_workers import (
    DIGEST,
    CutOffWorker,
    PartitionedWorkers,
    UnreachableExecutor,
)
from support.protocol_worker import ProtocolWorker
from support.stale_calls import stale_calls_refused

from slipway.domain.phases import Phase
from slipway.domain.results import AttemptEnd
from slipway.executors.base import WorkerSpec
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.agent import EXIT_OK
from slipway.worker.errors import AttemptEnded
from slipway.worker.reporter import Reporter

SAFETY_LIMIT_S = 90.0  # guards against a hang; not a timing assertion
SHORT_CUT_S = 2.0  # the short cut's length: well within HEARTBEAT_EXPIRY below
LINES_BEFORE_CUT = 10  # stored before a worker is cut off


async def _start(tmp_path: Path, heartbeat_expiry: int
                 ) -> tuple[Harness, UnreachableExecutor, PartitionedWorkers]:
    harness = Harness(tmp_path, manager={"HEARTBEAT_EXPIRY": heartbeat_expiry})
    workers = PartitionedWorkers(harness.grpc_port)
    executor = UnreachableExecutor(harness.executor_configs()[0], "m", script=workers)
    await harness.start([executor])
    return harness, executor, workers


async def _stop(harness: Harness, executor: UnreachableExecutor) -> None:
    await executor.stop_all()
    await harness.stop()


async def _within(what: str, awaitable: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(awaitable, SAFETY_LIMIT_S)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {SAFETY_LIMIT_S} s") from None


async def _exited(harness: Harness, worker: CutOffWorker) -> None:
    await harness.wait_for(lambda: worker.exit_code is not None, within=SAFETY_LIMIT_S)


def _lines_of(worker: CutOffWorker, messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith(f"{worker.name} line ")]


async def _lines_stored(harness: Harness, build_id: str, worker: CutOffWorker,
                        count: int) -> None:
    """Until `count` of the worker's lines are in the build's log."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while True:
        messages = [e.message for e in await harness.log(build_id)]
        if len(_lines_of(worker, messages)) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} lines of {worker.name}: not stored within "
                                 f"{SAFETY_LIMIT_S} s")
        await asyncio.sleep(0.05)


async def test_a_worker_cut_off_briefly_carries_on_and_its_lines_arrive_once(
    tmp_path: Path, fault_figures: FaultFigures,
) -> None:
    harness, executor, workers = await _start(tmp_path, heartbeat_expiry=10)
    refused_before = stale_calls_refused()
    try:
        build_id = await harness.submit()
        worker = await workers.worker(1)
        await _lines_stored(harness, build_id, worker, LINES_BEFORE_CUT)
        worker.proxy.cut()
        # the build writes lines all through the cut: the Reporter keeps them
        written_before_cut = len(worker.lines)
        await asyncio.sleep(SHORT_CUT_S)
        written_in_cut = len(worker.lines) - written_before_cut
        worker.proxy.resume()
        worker.finish.set()  # PUSHING and COMPLETE go after every line is acknowledged
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR,
                                           within=SAFETY_LIMIT_S)
        await _exited(harness, worker)

        assert record.phase is Phase.COMPLETE
        assert [a.outcome for a in record.attempts] == [AttemptEnd.COMPLETED]
        stored = _lines_of(worker, [e.message for e in await harness.log(build_id)])
        assert written_in_cut > 0
        assert stored == worker.lines  # every line, once, in order
        assert worker.exit_code == EXIT_OK
        refused = stale_calls_refused() - refused_before
        assert refused == 0
        fault_figures(dict(accepted=1, complete=1, attempts=len(record.attempts),
                      attempts_lost=0, lines_written=len(worker.lines),
                      lines_written_in_cut=written_in_cut, lines_stored=len(stored),
                      stale_calls_refused=refused))
    finally:
        await _stop(harness, executor)


async def test_a_worker_cut_off_past_its_expiry_is_replaced_and_refused_when_it_returns(
    tmp_path: Path, fault_figures: FaultFigures,
) -> None:
    harness, executor, workers = await _start(tmp_path, heartbeat_expiry=3)
    refused_before = stale_calls_refused()
    try:
        build_id = await harness.submit()
        old = await workers.worker(1)
        await _lines_stored(harness, build_id, old, LINES_BEFORE_CUT)
        old.proxy.cut()  # until the build has run again elsewhere: longer than the expiry
        new = await workers.worker(2, within=SAFETY_LIMIT_S)
        await _lines_stored(harness, build_id, new, LINES_BEFORE_CUT)
        new.finish.set()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR,
                                          within=SAFETY_LIMIT_S)
        log_at_completion = [e.message for e in await harness.log(build_id)]
        cut_ended = time.monotonic()
        old.proxy.resume()
        await _exited(harness, old)
        healed_for = time.monotonic() - cut_ended

        assert record.phase is Phase.COMPLETE
        assert [a.outcome for a in record.attempts] == [
            AttemptEnd.HEARTBEAT_LOST, AttemptEnd.COMPLETED]
        assert len(executor.started) == 2  # one worker per attempt
        # the old worker heard it was ended and stopped its build by itself
        assert old.exit_code == EXIT_OK and old.build_ended
        messages = [e.message for e in await harness.log(build_id)]
        assert messages == log_at_completion  # nothing of the old worker once healed
        end = next(i for i, m in enumerate(messages)
                   if m.startswith("Attempt 1 of 3 failed"))
        assert len(_lines_of(old, messages[:end])) >= LINES_BEFORE_CUT
        assert _lines_of(old, messages[end:]) == []
        assert _lines_of(new, messages) == new.lines
        refused = stale_calls_refused() - refused_before
        assert refused >= 1
        fault_figures(dict(accepted=1, complete=1, attempts=len(record.attempts),
                      attempts_lost=1, old_lines_stored=len(_lines_of(old, messages)),
                      old_lines_written=len(old.lines), new_lines_stored=len(new.lines),
                      stale_calls_refused=refused, old_worker_stopped_after_heal_s=
                      round(healed_for, 1)))
    finally:
        await _stop(harness, executor)


async def test_every_call_of_an_ended_attempt_is_refused_and_changes_nothing(
    tmp_path: Path, fault_figures: FaultFigures,
) -> None:
    """Call by call, what a worker cut off past its expiry meets when it returns: its
    attempt ended (heartbeat lost) and the build runs on a new worker."""
    harness: Harness
    tokens: list[str] = []
    retry_running = asyncio.Event()
    finish_retry = asyncio.Event()

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        tokens.append(w.job_jwt)
        assert (await w.set_phase(pb.UNPACKING)).success
        if len(tokens) == 1:
            assert all(r.success for r in await w.logs([{"stream": "old before\n"}]))
            await asyncio.sleep(3600)  # cut off: silent until the executor stops it
        retry_running.set()
        while not finish_retry.is_set():
            await w.heartbeat()
            await asyncio.sleep(0.2)
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST)).success

    harness = Harness(tmp_path, manager={"HEARTBEAT_EXPIRY": 1})
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    refused_before = stale_calls_refused()
    try:
        build_id = await harness.submit()
        await _within("the retry's worker", retry_running.wait())
        before = await harness.build(build_id)
        log_before = [e.message for e in await harness.log(build_id)]

        old = ProtocolWorker(harness.address)
        codes = []
        for call in (
            old.set_phase(pb.BUILDING, seq=10, job_jwt=tokens[0]),
            old.set_phase(pb.COMPLETE, seq=11, digest=DIGEST, job_jwt=tokens[0]),
            old.logs([{"stream": "old after\n"}], seqs=[12], job_jwt=tokens[0]),
            old.stub.DetermineCachedTag(pb.CachedTagRequest(job_jwt=tokens[0])),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            codes.append(refused.value.code())
            assert "this build attempt was ended" in str(refused.value.details())
        assert await old.heartbeat(job_jwt=tokens[0]) == [False]
        # slipway's worker client hears it as the end of its attempt
        reporter = Reporter(old.stub, tokens[0], retry_window=5)
        await reporter.log("old after, through the Reporter")
        with pytest.raises(AttemptEnded):
            await reporter.flush()
        assert reporter.ended.is_set()
        with pytest.raises(AttemptEnded):
            await reporter.phase(pb.PUSHING)
        await reporter.close()

        after = await harness.build(build_id)
        assert codes == [grpc.StatusCode.FAILED_PRECONDITION] * 4
        assert (after.phase, after.attempts) == (before.phase, before.attempts)
        assert [e.message for e in await harness.log(build_id)] == log_before
        finish_retry.set()
        record = await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert record.phase is Phase.COMPLETE and record.image_digest == DIGEST
        messages = [e.message for e in await harness.log(build_id)]
        assert "old before" in messages
        assert not any(m.startswith("old after") for m in messages)
        refused_count = stale_calls_refused() - refused_before
        assert refused_count == 6  # 2 SetPhase, 2 LogMessage, DetermineCachedTag, Heartbeat
        fault_figures(dict(accepted=1, complete=1, attempts=len(record.attempts),
                      attempts_lost=1, stale_calls_refused=refused_count))
    finally:
        await harness.stop()


async def test_a_line_sent_again_on_a_new_stream_is_stored_once(tmp_path: Path) -> None:
    """A worker whose connection dropped before the acknowledgements came sends its lines
    again, with their numbers, on a new stream: those the manager stored are not stored
    twice."""
    harness: Harness
    replies: list[list[bool]] = []

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        lines = [{"stream": f"line {n}\n"} for n in range(1, 5)]
        replies.append([r.success for r in await w.logs(lines[:3], seqs=[1, 2, 3])])
        replies.append([r.success for r in await w.logs(lines[1:], seqs=[2, 3, 4])])
        assert (await w.set_phase(pb.COMPLETE, digest=DIGEST, seq=5)).success

    harness = Harness(tmp_path)
    await harness.start([ScriptedExecutor(harness.executor_configs()[0], "m",
                                          script=worker)])
    try:
        build_id = await harness.submit()
        await harness.wait_phase(build_id, Phase.COMPLETE, Phase.INTERNAL_ERROR)
        assert replies == [[True, True, True], [False, False, True]]
        messages = [e.message for e in await harness.log(build_id)]
        assert [m for m in messages if m.startswith("line ")] == [
            "line 1", "line 2", "line 3", "line 4"]
    finally:
        await harness.stop()
