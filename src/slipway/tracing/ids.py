"""A build's trace and root span ids, derived from its id: every manager and API process
agrees on them without storing them, so the spans each writes join one trace."""

from __future__ import annotations

import functools
import hashlib

from opentelemetry.trace import SpanContext, TraceFlags

BUILD_ATTRIBUTE = "slipway.build_id"


@functools.lru_cache(maxsize=4096)  # each span of a build asks again
def _digest(build_id: str) -> bytes:
    return hashlib.sha256(f"slipway-build-trace:{build_id}".encode()).digest()


def trace_id_of(build_id: str) -> int:
    return int.from_bytes(_digest(build_id)[:16], "big") or 1


def root_span_id_of(build_id: str) -> int:
    return int.from_bytes(_digest(build_id)[16:24], "big") or 1


def root_context(build_id: str) -> SpanContext:
    """The build's root span, as a remote parent for spans written before it ends."""
    return SpanContext(trace_id_of(build_id), root_span_id_of(build_id), is_remote=True,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))


def traceparent(context: SpanContext) -> str:
    """The W3C traceparent header of `context`."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def parse_traceparent(value: str) -> SpanContext | None:
    """A W3C traceparent (version 00) as a remote span context; None when malformed."""
    parts = value.strip().split("-")
    if len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
