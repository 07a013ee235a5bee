"""A finished span as the JSON object slipway keeps and the API returns (docs/traces.md)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from slipway.tracing.ids import BUILD_ATTRIBUTE

# a kept attribute's text is cut to this many characters (a span is small and bounded)
MAX_ATTRIBUTE_CHARS = 300
MAX_ATTRIBUTES = 32


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_ATTRIBUTE_CHARS]
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value[:MAX_ATTRIBUTES]]
    return str(value)[:MAX_ATTRIBUTE_CHARS]


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """`span` as JSON: ids in hex, times in UNIX seconds, `service` the process that
    wrote it (slipway-manager, slipway-worker)."""
    context, parent = span.context, span.parent
    assert context is not None
    attributes = {k: _value(v) for k, v in list((span.attributes or {}).items())[:MAX_ATTRIBUTES]
                  if k != BUILD_ATTRIBUTE}
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": None if parent is None else f"{parent.span_id:016x}",
        "name": span.name,
        "service": str(span.resource.attributes.get("service.name", "")),
        "start": (span.start_time or 0) / 1e9,
        "end": (span.end_time or span.start_time or 0) / 1e9,
        "status": span.status.status_code.name.lower(),
        "attributes": attributes,
    }


def new_record(*, trace_id: int, span_id: int, parent_id: int | None, name: str,
               service: str, start: float, end: float, status: str,
               attributes: dict[str, Any]) -> dict[str, Any]:
    """A span written by this process, as `span_record` would make it."""
    return {
        "trace_id": f"{trace_id:032x}",
        "span_id": f"{span_id:016x}",
        "parent_span_id": None if parent_id is None else f"{parent_id:016x}",
        "name": name,
        "service": service,
        "start": start,
        "end": max(start, end),
        "status": status,
        "attributes": {k: _value(v) for k, v in list(attributes.items())[:MAX_ATTRIBUTES]
                       if v is not None},
    }


def readable(record: dict[str, Any], build_id: str, resource: Resource) -> ReadableSpan:
    """A span record as the SDK's ReadableSpan (for OTLP export), tagged with its build."""
    flags = TraceFlags(TraceFlags.SAMPLED)
    trace_id = int(record["trace_id"], 16)
    parent = record["parent_span_id"]
    status = record["status"]
    return ReadableSpan(
        name=record["name"],
        context=SpanContext(trace_id, int(record["span_id"], 16), is_remote=False,
                            trace_flags=flags),
        parent=None if parent is None else SpanContext(trace_id, int(parent, 16),
                                                       is_remote=True, trace_flags=flags),
        resource=resource,
        attributes={**record["attributes"], BUILD_ATTRIBUTE: build_id},
        status=Status(StatusCode.ERROR if status == "error" else
                      StatusCode.OK if status == "ok" else StatusCode.UNSET),
        start_time=int(record["start"] * 1e9),
        end_time=int(record["end"] * 1e9),
    )
