"""The manager's spans of each build (docs/traces.md): one TracerProvider per server,
its spans kept with the build (store `traces`) and, when TRACING.OTLP_ENDPOINT is set,
exported over OTLP. Spans are written where each stage happens (API, scheduler,
attempts, worker calls), as children of the build's root span, whose ids come from the
build's id (tracing/ids.py); the root itself is written when the build ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Span, Status, StatusCode

from slipway.tracing.ids import (
    BUILD_ATTRIBUTE,
    root_context,
    root_span_id_of,
    trace_id_of,
    traceparent,
)
from slipway.tracing.records import span_record
from slipway.tracing.wire import BadSpans, decode

log = logging.getLogger("slipway.tracing")

# spans kept of one build by one process (more are counted as dropped): a trace is
# bounded whatever a build does (a Dockerfile of hundreds of steps)
MAX_SPANS_PER_BUILD = 2000
# builds whose span counts a process remembers
REMEMBERED_BUILDS = 4096
# how often kept spans are written to the store
FLUSH_INTERVAL_S = 1.0
ROOT_SPAN = "build"


class TraceStore(Protocol):
    async def append(self, spans: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        """Keep each build's `spans` (build id -> span records), in one write."""

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        """The spans kept of the build, in the order they were kept."""


def ns(seconds: float) -> int:
    return int(seconds * 1e9)


# the ids the next span takes (the build's root span, whose ids are the build's)
_FORCED_IDS: ContextVar[tuple[int, int] | None] = ContextVar("slipway_forced_ids",
                                                             default=None)


class _BuildIds(IdGenerator):
    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = _FORCED_IDS.get()
        return forced[1] if forced else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _FORCED_IDS.get()
        return forced[0] if forced else self._random.generate_trace_id()


class KeptSpans(SpanProcessor):
    """Collects each build's finished spans (those with its `slipway.build_id`) for the
    store; `flush` writes them."""

    def __init__(self, store: TraceStore | None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._counts: OrderedDict[str, int] = OrderedDict()

    def on_end(self, span: ReadableSpan) -> None:
        build_id = (span.attributes or {}).get(BUILD_ATTRIBUTE)
        if not isinstance(build_id, str) or self.store is None:
            return
        with self._lock:
            count = self._counts.pop(build_id, 0) + 1
            self._counts[build_id] = count
            while len(self._counts) > REMEMBERED_BUILDS:
                self._counts.popitem(last=False)
            if count > MAX_SPANS_PER_BUILD:
                return
            self._pending.setdefault(build_id, []).append(span_record(span))

    def pending(self, build_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pending.get(build_id, ()))

    def dropped(self, build_id: str) -> int:
        with self._lock:
            return max(0, self._counts.get(build_id, 0) - MAX_SPANS_PER_BUILD)

    async def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch or self.store is None:
            return
        try:
            await self.store.append(batch)
        except Exception as exc:  # a trace is not worth failing a build for
            log.warning("could not keep the spans of %d builds (%s)", len(batch), exc)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class BuildTracing:
    """One server's tracer of builds. `otlp_endpoint`: also export every span there
    (gRPC OTLP), with `otlp_headers` and, when `otlp_insecure`, without TLS."""

    def __init__(
        self,
        store: TraceStore | None,
        *,
        otlp_endpoint: str | None = None,
        otlp_headers: Mapping[str, str] | None = None,
        otlp_insecure: bool = False,
        service_name: str = "slipway-manager",
    ) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                       id_generator=_BuildIds(), sampler=ALWAYS_ON)
        self.kept = KeptSpans(store)
        self._processors: list[SpanProcessor] = [self.kept]
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_insecure,
                                        headers=dict(otlp_headers or {}))
            self._processors.append(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        for processor in self._processors:
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("slipway.manager")
        # why each build waited when it was submitted (the queue-wait span's reason),
        # for the builds this process admitted
        self._waited_for: OrderedDict[str, str] = OrderedDict()
        # when each build's worker reported its end (build id -> time)
        self._completing: OrderedDict[str, float] = OrderedDict()
        # when the executor started each job's worker (job id -> time)
        self._started: OrderedDict[str, float] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None

    # --- writing spans --------------------------------------------------------------

    @staticmethod
    def parent(build_id: str) -> Context:
        return trace.set_span_in_context(trace.NonRecordingSpan(root_context(build_id)))

    @staticmethod
    def traceparent(build_id: str) -> str:
        return traceparent(root_context(build_id))

    @contextlib.contextmanager
    def span(self, build_id: str, name: str, **attributes: Any) -> Iterator[Span]:
        """A span of the build around the block (its status `error` when it raises)."""
        with self.tracer.start_as_current_span(
            name, context=self.parent(build_id),
            attributes={BUILD_ATTRIBUTE: build_id, **_clean(attributes)},
            record_exception=False, set_status_on_exception=True,
        ) as span:
            yield span

    def record(self, build_id: str, name: str, start: float, end: float,
               **attributes: Any) -> None:
        """A span of the build that already happened, from `start` to `end`."""
        span = self.tracer.start_span(
            name, context=self.parent(build_id), start_time=ns(start),
            attributes={BUILD_ATTRIBUTE: build_id, **_clean(attributes)})
        span.end(end_time=ns(max(start, end)))

    def completing(self, build_id: str) -> None:
        """The build's worker reported its end: the `completion` span begins."""
        self._completing[build_id] = time.time()
        while len(self._completing) > REMEMBERED_BUILDS:
            self._completing.popitem(last=False)

    def finish(self, build_id: str, submitted: float, phase: str, **attributes: Any) -> None:
        """The build's root span, from its submit to now (its end, in `phase`), and the
        `completion` span before it when its worker's report began it here."""
        now = time.time()
        completing = self._completing.pop(build_id, None)
        if completing is not None:
            self.record(build_id, "completion", completing, now, **{"slipway.phase": phase})
        token = _FORCED_IDS.set((trace_id_of(build_id), root_span_id_of(build_id)))
        try:
            span = self.tracer.start_span(
                ROOT_SPAN, context=Context(), start_time=ns(submitted),
                attributes={BUILD_ATTRIBUTE: build_id, "slipway.phase": phase,
                            **_clean(attributes)})
        finally:
            _FORCED_IDS.reset(token)
        if phase in ("error", "internalerror"):
            span.set_status(Status(StatusCode.ERROR, phase))
        span.end(end_time=ns(max(submitted, now)))
        self.flush_soon()

    def take_worker_spans(self, build_id: str, data: bytes) -> int:
        """Keep (and export) the spans a worker of the build sent; those of another
        trace are dropped. How many were taken."""
        try:
            spans = decode(data)
        except BadSpans as exc:
            log.warning("the worker of build %s sent spans that cannot be read: %s",
                        build_id, exc)
            return 0
        wanted = trace_id_of(build_id)
        taken = 0
        for span in spans:
            if span.context is None or span.context.trace_id != wanted:
                continue
            attributes = {**_clean(dict(span.attributes or {})), BUILD_ATTRIBUTE: build_id}
            span._attributes = attributes  # the manager's word
            for processor in self._processors:
                processor.on_end(span)
            taken += 1
        return taken

    # --- the worker's start, as the manager sees it ---------------------------------

    def worker_started(self, job_id: str) -> None:
        """The executor started the job's worker (its registration ends the wait)."""
        self._started[job_id] = time.time()
        while len(self._started) > REMEMBERED_BUILDS:
            self._started.popitem(last=False)

    def registering(self, build_id: str, job_id: str, attempt: int | None = None) -> None:
        """The job's worker registers: the span from its executor's start to now (when
        this process started it)."""
        started = self._started.pop(job_id, None)
        if started is not None:
            self.record(build_id, "worker start", started, time.time(),
                        **{"slipway.attempt": attempt})

    # --- why it waited --------------------------------------------------------------

    def admitted(self, build_id: str, waiting_for: str | None) -> None:
        self._waited_for[build_id] = waiting_for or "next"
        while len(self._waited_for) > REMEMBERED_BUILDS:
            self._waited_for.popitem(last=False)

    def waited_for(self, build_id: str, attempt: int) -> str:
        """Why the build waited for this claim: `retry` after an attempt, else why it
        waited when it was submitted ("unknown" when another process admitted it)."""
        if attempt > 1:
            return "retry"
        return self._waited_for.pop(build_id, "unknown")

    # --- keeping and reading --------------------------------------------------------

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        """The build's spans: those kept, and those of this process not yet written."""
        stored = [] if self.kept.store is None else await self.kept.store.read(build_id)
        seen = {s["span_id"] for s in stored}
        return stored + [s for s in self.kept.pending(build_id) if s["span_id"] not in seen]

    def flush_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop: the flusher or close writes them
            asyncio.get_running_loop().create_task(self.kept.flush())

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.kept.flush()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.kept.flush()
        await asyncio.to_thread(self.provider.shutdown)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry's attribute types only (None dropped)."""
    return {k: v if isinstance(v, (str, bool, int, float)) else str(v)
            for k, v in attributes.items() if v is not None}


def disabled() -> BuildTracing:
    """A tracer that keeps nothing (tests and tools that build parts alone)."""
    return BuildTracing(None)
