"""The worker's spans of its build (docs/traces.md): kept in memory from the process's
start, joined to the manager's trace by the `traceparent` its registration's answer
carries, and sent with the last SetPhase (tracing/wire.py). A worker whose manager sent
no traceparent (Quay's) sends none."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Span, Status, StatusCode

from slipway.tracing.ids import parse_traceparent
from slipway.tracing.wire import MAX_SPANS_BYTES, MAX_WORKER_SPANS, encode
from slipway.worker.registry_cache import (
    EMPTY_CACHE_SAID,
    PUSHING_CACHE_LINE,
    STEP_LINE,
    UNAVAILABLE_SAID,
)

_PULLED = re.compile(r"^--> Cache pulled from remote ")
_USING = re.compile(r"^--> Using cache ")

# when a standby worker was handed its build (entry.py): its work began then
assigned_at: float | None = None

# set while a worker runs: the spans of its build go there
CURRENT: ContextVar[WorkerTrace | None] = ContextVar("slipway_worker_trace", default=None)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def process_started() -> float:
    """When this process started (UNIX seconds), from /proc; now when unknown."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime, after boot, in clock ticks
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


class WorkerTrace:
    """The spans of one worker. `started`: when its work began (the process's start, or
    a standby's assignment)."""

    def __init__(self, started: float, *, standby: bool = False) -> None:
        self.started = started
        self.standby = standby
        self.exporter = InMemorySpanExporter()
        # every span kept, whatever the traceparent's sampled flag: the manager decides
        # what it keeps and exports
        self.provider = TracerProvider(resource=Resource.create(
            {"service.name": "slipway-worker"}), sampler=ALWAYS_ON)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("slipway.worker")
        self.root: Span | None = None
        self._root_context: Context | None = None
        # what hides the build's secrets (the reporter's mask), for attribute texts
        self.mask: Callable[[str], str] = lambda text: text

    @property
    def joined(self) -> bool:
        return self.root is not None

    def join(self, traceparent: str | None, registered: tuple[float, float]) -> None:
        """The manager named the build's trace: open the worker's span under it, with
        its start and registration as they happened."""
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent is None:
            return
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        self.root = self.tracer.start_span(
            "worker", context=context, start_time=_ns(self.started),
            attributes={"slipway.worker.standby": self.standby, "slipway.pid": os.getpid()})
        self._root_context = trace.set_span_in_context(self.root)
        began, ended = registered
        self.record("worker process start", self.started, began,
                    **{"slipway.worker.standby": self.standby})
        self.record("register", began, ended)

    def record(self, name: str, start: float, end: float, **attributes: Any) -> None:
        if self._root_context is None:
            return
        span = self.tracer.start_span(name, context=self._root_context,
                                      start_time=_ns(start), attributes=self._masked(attributes))
        span.end(end_time=_ns(max(start, end)))

    def start_span(self, name: str, parent: Span | None = None, **attributes: Any
                   ) -> Span | None:
        if self._root_context is None:
            return None
        context = self._root_context if parent is None else trace.set_span_in_context(parent)
        return self.tracer.start_span(name, context=context,
                                      attributes=self._masked(attributes))

    def _masked(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {k: self.mask(v) if isinstance(v, str) else v for k, v in attributes.items()
                if v is not None}

    def finished_spans(self) -> bytes:
        """The worker's span ends now; every span finished so far, encoded (b"" when not
        joined, or when they would not fit in the call's metadata)."""
        if self.root is None:
            return b""
        if self.root.is_recording():
            self.root.end()
        spans = list(self.exporter.get_finished_spans())[:MAX_WORKER_SPANS]
        data = encode(spans)
        while len(data) > MAX_SPANS_BYTES and len(spans) > 1:
            spans = spans[: len(spans) // 2]
            data = encode(spans)
        return data if len(data) <= MAX_SPANS_BYTES else b""


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A span of the current worker's build around the block (none outside a worker)."""
    current = CURRENT.get()
    opened = current.start_span(name, **attributes) if current is not None else None
    if opened is None:
        yield None
        return
    try:
        yield opened
    except BaseException as exc:
        opened.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        opened.end()


class StepSpans:
    """A span for each build step, from its STEP line to the next (or the build's end),
    marked cached when the runtime reused it; under it, the registry cache's lookup
    (from the step's start to its first line) and pushes (`--> Pushing cache`). No
    lookup span once the worker said no step is looked up (an empty or unavailable
    cache): the step's first line then only marks its container's start."""

    def __init__(self, cache_repo: str = "") -> None:
        self.current = CURRENT.get()
        self.cache_repo = cache_repo
        self.parent: Span | None = None
        self._step: Span | None = None
        self._lookup: Span | None = None
        self._push: Span | None = None

    def begin(self) -> None:
        if self.current is not None:
            self.parent = self.current.start_span("build steps")

    def line(self, text: str) -> None:
        if self.current is None or self.parent is None:
            return
        stripped = text.strip()
        self._end_push()
        if stripped == EMPTY_CACHE_SAID or stripped.startswith(UNAVAILABLE_SAID):
            self.no_lookups()
            return
        if match := STEP_LINE.match(stripped):
            self._end_step()
            instruction = match[2]
            self._step = self.current.start_span(
                match[1].replace("STEP", "step"), parent=self.parent,
                **{"slipway.step.instruction": instruction[:200], "slipway.step.cached": False})
            if self.cache_repo and not instruction.upper().startswith("FROM "):
                self._lookup = self.current.start_span("cache lookup", parent=self._step)
            return
        if self._lookup is not None:
            self._lookup.set_attribute("slipway.cache.hit", bool(_PULLED.match(stripped)))
            self._lookup.end()
            self._lookup = None
        if self._step is not None and _USING.match(stripped):
            self._step.set_attribute("slipway.step.cached", True)
        if match := PUSHING_CACHE_LINE.match(stripped):
            self._push = self.current.start_span(
                "cache push", parent=self._step or self.parent,
                **{"slipway.cache.reference": match[1][:200]})

    def no_lookups(self) -> None:
        """The steps from now on are not looked up in the registry cache."""
        self.cache_repo = ""

    def _end_push(self) -> None:
        if self._push is not None:
            self._push.end()
            self._push = None

    def _end_step(self) -> None:
        if self._lookup is not None:
            self._lookup.end()
            self._lookup = None
        if self._step is not None:
            self._step.end()
            self._step = None

    def end(self, failed: bool = False) -> None:
        self._end_push()
        self._end_step()
        if self.parent is not None:
            if failed:
                self.parent.set_status(Status(StatusCode.ERROR))
            self.parent.end()
            self.parent = None
