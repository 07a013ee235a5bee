"""The worker's spans in the protocol (tracing/wire.py): sent with its last SetPhase only
to a manager that named the build's trace (never to Quay's), under that trace, masked as
the log is."""

from __future__ import annotations

from opentelemetry.trace import SpanContext
from support.fake_manager import FakeManager, serve_manager

from slipway.protocol import buildman_pb2 as pb
from slipway.tracing.ids import traceparent
from slipway.tracing.wire import SPANS_KEY, decode
from slipway.worker import tracing
from slipway.worker.agent import EXIT_OK, run_worker
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.reporter import Reporter

SECRET = "build-secret-value-0123"
TRACE_ID = 0x5C0F_0000_0000_0000_0000_0000_0000_00AA
ROOT_SPAN = 0x0000_0000_0000_0BAD


def env(server: str) -> WorkerEnvironment:
    return WorkerEnvironment(token="registration-token", server=server, build_uuid="b-1",
                             insecure=True, heartbeat_interval=0.2, retry_window=5.0)


async def scripted(pack: pb.BuildPack, _env: WorkerEnvironment, reporter: Reporter) -> None:
    """A build in miniature: a secret, a span naming it, the end."""
    reporter.add_secret(SECRET)
    await reporter.phase(pb.UNPACKING)
    with tracing.span("context fetch", **{"slipway.note": f"token {SECRET}"}):
        await reporter.log("fetched")
    await reporter.phase(pb.COMPLETE, image_digest="sha256:" + "0" * 64)


async def run(manager: FakeManager) -> int:
    async with serve_manager(manager) as server:
        return await run_worker(env(server), build=scripted)


async def test_a_manager_that_names_no_trace_gets_no_spans() -> None:
    manager = FakeManager(pb.BuildPack(job_jwt="job-jwt"))
    assert await run(manager) == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "COMPLETE"]
    assert all(SPANS_KEY not in m for m in manager.rec.phase_metadata)


async def test_the_spans_go_with_the_last_phase_under_the_managers_trace() -> None:
    manager = FakeManager(pb.BuildPack(job_jwt="job-jwt"))
    manager.traceparent = traceparent(SpanContext(TRACE_ID, ROOT_SPAN, is_remote=True))
    assert await run(manager) == EXIT_OK
    unpacking, complete = manager.rec.phase_metadata
    assert SPANS_KEY not in unpacking
    data = complete[SPANS_KEY]
    assert isinstance(data, bytes)
    spans = {s.name: s for s in decode(data)}
    assert {"worker", "worker process start", "register", "context fetch"} <= set(spans)
    assert {s.context.trace_id for s in spans.values() if s.context} == {TRACE_ID}
    worker = spans["worker"]
    assert worker.parent is not None and worker.parent.span_id == ROOT_SPAN
    assert worker.context is not None
    for name in ("worker process start", "register", "context fetch"):
        parent = spans[name].parent
        assert parent is not None and parent.span_id == worker.context.span_id
    assert spans["context fetch"].attributes == {"slipway.note": "token ***"}
    assert SECRET.encode() not in data and b"job-jwt" not in data


def step_spans(lines: list[str]) -> list[tuple[str, str]]:
    """(span, its parent) of the build steps `lines` describe, as the worker traces them
    with the registry cache on."""
    trace = tracing.WorkerTrace(0.0)
    trace.join(traceparent(SpanContext(TRACE_ID, ROOT_SPAN, is_remote=True)), (0.0, 0.0))
    token = tracing.CURRENT.set(trace)
    try:
        steps = tracing.StepSpans("registry.example/team/app-cache")
        steps.begin()
        for line in lines:
            steps.line(line)
        steps.end()
    finally:
        tracing.CURRENT.reset(token)
    spans = decode(trace.finished_spans())
    names = {s.context.span_id: s.name for s in spans if s.context}
    return [(s.name, names.get(s.parent.span_id, "") if s.parent else "") for s in spans
            if s.name.startswith(("step", "cache"))]


BUILD_LINES = ["STEP 1/2: FROM busybox", "STEP 2/2: RUN make", "making",
               "--> Pushing cache registry.example/team/app-cache:ab12", "--> 0123456789ab"]


def test_a_step_looked_up_in_the_cache_has_a_lookup_span() -> None:
    assert ("cache lookup", "step 2/2") in step_spans(BUILD_LINES)


def test_a_build_that_looks_no_step_up_has_no_lookup_span() -> None:
    """An empty cache repository (the worker says so before the steps): the time to the
    step's first line is its container's start, not a lookup."""
    for said in ("Registry cache: empty, no step is looked up",
                 "cache unavailable: registry.example answered 503; building without it"):
        spans = step_spans([said, *BUILD_LINES])
        assert "cache lookup" not in [name for name, _ in spans]
        assert ("cache push", "step 2/2") in spans
