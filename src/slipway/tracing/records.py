"""A finished span as the JSON object slipway keeps and the API returns (docs/traces.md)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

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
