"""A build's own timeout (issue 29): set at submission or by BUILD_TIMEOUTS for its
namespace, it is the attempt's deadline key; a build past it is stopped and ends
`internalerror` naming the timeout, with one attempt, not retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker

from slipway.domain.phases import Phase
from slipway.executors.base import WorkerSpec
from slipway.manager.admission import Admission, Submission
from slipway.store.records import NewBuild


async def _start(tmp_path: Path, top: dict[str, Any] | None = None
                 ) -> tuple[Harness, ScriptedExecutor]:
    harness: Harness

    async def worker(spec: WorkerSpec) -> None:
        # a build that would run for ever: it heartbeats until the manager refuses it
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        await w.heartbeat_until_refused(interval=0.1)

    harness = Harness(tmp_path, top=top)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    return harness, executor


async def _submit(harness: Harness, namespace: str, options: dict[str, Any] | None = None
                  ) -> str:
    """Through the admission, as the API's routes submit (it writes the limits)."""
    admission = Admission(harness.config, harness.store, harness.control)
    new = NewBuild(namespace=namespace, repository="repo", tags=["latest"],
                   registry=harness.config.SERVER_HOSTNAME, options=options or {})
    return (await admission.submit(Submission(new))).record.id


async def test_a_build_past_its_own_timeout_is_stopped_and_not_retried(tmp_path: Path) -> None:
    harness, executor = await _start(tmp_path)
    try:
        build_id = await _submit(
            harness, "ns", {"timeout": {"seconds": 1, "set_by": "submission"}})
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        expected = "the build ran past its timeout of 1s (set at submission); it was stopped"
        assert record.phase is Phase.INTERNAL_ERROR
        assert record.error == expected
        # one attempt, ended timed_out, and the build is not put back in the queue
        assert [(a.attempt, a.outcome) for a in record.attempts] == [(1, "timed_out")]
        assert await harness.store.queue.get_for_build(build_id) is None
        entries = await harness.log(build_id)
        assert [e.message for e in entries if e.type == "error"][-1] == expected
        assert (entries[-1].type, entries[-1].message) == ("phase", "internalerror")
        assert not any("will be retried" in e.message for e in entries)
        await harness.wait_for(lambda: executor.stopped == ["default-1"])
    finally:
        await harness.stop()


async def test_the_namespace_default_applies_and_is_named(tmp_path: Path) -> None:
    harness, _ = await _start(
        tmp_path, top={"BUILD_TIMEOUTS": {"NAMESPACES": {"team": "1s"}}})
    try:
        build_id = await _submit(harness, "team")
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        assert record.options["timeout"] == {
            "seconds": 1, "set_by": "BUILD_TIMEOUTS.NAMESPACES.team"}
        assert record.error == ("the build ran past its timeout of 1s (set by "
                                "BUILD_TIMEOUTS.NAMESPACES.team); it was stopped")
        assert len(record.attempts) == 1
        # a namespace with no value of its own, and no DEFAULT: MACHINE_MAX_TIME only
        other = await _submit(harness, "others")
        assert "timeout" not in (await harness.build(other)).options
    finally:
        await harness.stop()
