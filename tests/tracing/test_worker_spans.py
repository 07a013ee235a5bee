"""The worker's spans as the manager takes them (tracing/wire.py): only those of the
build's own trace are kept; what cannot be read is dropped, nothing else changes."""

from __future__ import annotations

import gzip
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from slipway.tracing.build_tracing import BuildTracing
from slipway.tracing.ids import parse_traceparent
from slipway.tracing.wire import MAX_SPANS_BYTES, encode


class Kept:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}

    async def append(self, spans: Any) -> None:
        for build_id, records in spans.items():
            self.rows.setdefault(build_id, []).extend(records)

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        return list(self.rows.get(build_id, ()))


def worker_spans(traceparent: str, *names: str) -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = parse_traceparent(traceparent)
    assert parent is not None
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    for name in names:
        provider.get_tracer("t").start_span(name, context=context,
                                            attributes={"slipway.build_id": "forged"}).end()
    return encode(exporter.get_finished_spans())


async def test_only_the_builds_own_trace_is_kept() -> None:
    kept = Kept()
    tracing = BuildTracing(kept)
    ours = worker_spans(tracing.traceparent("build-a"), "context fetch", "push")
    theirs = worker_spans(tracing.traceparent("build-b"), "forged")
    assert tracing.take_worker_spans("build-a", ours) == 2
    assert tracing.take_worker_spans("build-a", theirs) == 0
    spans = await tracing.read("build-a")
    assert sorted(s["name"] for s in spans) == ["context fetch", "push"]
    # the manager names the build: a worker cannot file its spans under another one
    assert await tracing.read("forged") == []
    await tracing.close()
    assert sorted(s["name"] for s in kept.rows["build-a"]) == ["context fetch", "push"]


async def test_spans_that_cannot_be_read_are_dropped() -> None:
    tracing = BuildTracing(Kept())
    assert tracing.take_worker_spans("build-a", b"not gzip") == 0
    assert tracing.take_worker_spans("build-a", gzip.compress(b"\xff\x00junk")) == 0
    assert tracing.take_worker_spans("build-a", b"\x1f\x8b" + b"0" * (MAX_SPANS_BYTES + 1)) == 0
    assert await tracing.read("build-a") == []
    await tracing.close()
