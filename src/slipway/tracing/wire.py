"""The trace's part of the worker protocol (docs/traces.md#the-protocol), in gRPC
metadata only, so that Quay's manager and quay-builder, which ignore metadata they do not
know, are unaffected:

- the manager answers RegisterBuildJob with `traceparent` (W3C) in its initial
  metadata: the build's root span, under which the worker's spans go;
- slipway's worker, only when it was given a traceparent (so never towards Quay's
  manager), sends its finished spans with its last SetPhase (COMPLETE or ERROR) as
  `slipway-trace-spans-bin`: OTLP's ExportTraceServiceRequest, gzipped.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as WireSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

TRACEPARENT_KEY = "traceparent"
SPANS_KEY = "slipway-trace-spans-bin"
# what a manager accepts of one worker's spans (gzipped, and unpacked)
MAX_SPANS_BYTES = 256 * 1024
MAX_UNPACKED_BYTES = 2 * 1024 * 1024
MAX_WORKER_SPANS = 1000


class BadSpans(ValueError):
    """The worker's spans could not be read (the message says why)."""


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    return gzip.compress(encode_spans(spans).SerializeToString(), compresslevel=6)


def _plain(value: AnyValue) -> str | bool | int | float:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return str(value)


def decode(data: bytes) -> list[ReadableSpan]:
    """The spans of `data` (as `encode` made it), their resource kept; BadSpans when it
    is too big or not such a message."""
    if len(data) > MAX_SPANS_BYTES:
        raise BadSpans(f"{len(data)} bytes of spans, more than {MAX_SPANS_BYTES}")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            raw = unpacked.read(MAX_UNPACKED_BYTES + 1)
        if len(raw) > MAX_UNPACKED_BYTES:
            raise BadSpans(f"the spans unpack to more than {MAX_UNPACKED_BYTES} bytes")
        request = ExportTraceServiceRequest.FromString(raw)
    except (OSError, EOFError, ValueError, DecodeError) as exc:
        if isinstance(exc, BadSpans):
            raise
        raise BadSpans(f"not gzipped OTLP spans ({exc})") from None
    spans: list[ReadableSpan] = []
    for resource_spans in request.resource_spans:
        resource = Resource({a.key: _plain(a.value) for a in resource_spans.resource.attributes})
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                if len(spans) >= MAX_WORKER_SPANS:
                    return spans
                spans.append(_span(s, resource))
    return spans


def _span(s: WireSpan, resource: Resource) -> ReadableSpan:
    trace_id = int.from_bytes(s.trace_id, "big")
    flags = TraceFlags(TraceFlags.SAMPLED)
    context = SpanContext(trace_id, int.from_bytes(s.span_id, "big"),
                          is_remote=False, trace_flags=flags)
    parent_id = s.parent_span_id
    parent = (SpanContext(trace_id, int.from_bytes(parent_id, "big"), is_remote=True,
                          trace_flags=flags) if parent_id else None)
    code = s.status.code
    status = Status(StatusCode.ERROR if code == 2 else
                    StatusCode.OK if code == 1 else StatusCode.UNSET)
    return ReadableSpan(
        name=s.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes={a.key: _plain(a.value) for a in s.attributes},
        kind=SpanKind.INTERNAL,
        status=status,
        start_time=s.start_time_unix_nano,
        end_time=s.end_time_unix_nano,
    )
