"""The manager's spans of each build (docs/traces.md): written where each stage happens
(API, scheduler, attempts, worker calls) as children of the build's root span, whose ids
come from the build's id (tracing/ids.py); the root itself is written when the build
ends. Each is kept with the build (store `traces`) and, when TRACING.OTLP_ENDPOINT is set,
exported over OTLP as the SDK's spans.

The spans of the scheduling path are plain records, made into the SDK's ReadableSpan
only for the exporter: the SDK's tracer cost about 70 us of CPU per span, most of a
build's scheduling cost at hundreds of builds a second (benchmarks/README.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from slipway.tracing.ids import (
    BUILD_ATTRIBUTE,
    root_context,
    root_span_id_of,
    trace_id_of,
    traceparent,
)
from slipway.tracing.records import new_record, readable, span_record
from slipway.tracing.wire import BadSpans, decode

log = logging.getLogger("slipway.tracing")

# spans kept of one build by one process (more are counted as dropped): a trace is
# bounded whatever a build does (a Dockerfile of hundreds of steps)
MAX_SPANS_PER_BUILD = 2000
# builds a process remembers something of (span counts, times, reasons)
REMEMBERED_BUILDS = 4096
# how often kept spans are written to the store
FLUSH_INTERVAL_S = 1.0
ROOT_SPAN = "build"
# the exporter's wait for a collector that does not answer, per batch
EXPORT_TIMEOUT_S = 5


class TraceStore(Protocol):
    async def append(self, spans: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        """Keep each build's `spans` (build id -> span records), in one write."""

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        """The spans kept of the build, in the order they were kept."""


class _Remembered(OrderedDict[str, Any]):
    """A mapping that forgets its oldest entries past REMEMBERED_BUILDS."""

    def remember(self, key: str, value: Any) -> None:
        self.pop(key, None)
        self[key] = value
        while len(self) > REMEMBERED_BUILDS:
            self.popitem(last=False)


class LiveSpan:
    """A span under way (`BuildTracing.span`): attributes and an error may be added."""

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes
        self.failed = False

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class BuildTracing:
    """One server's spans of builds. `otlp_endpoint`: also export every span there
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
        self.store = store
        self.service = service_name
        self.resource = Resource.create({"service.name": service_name})
        self._export: BatchSpanProcessor | None = None
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=otlp_insecure,
                                        headers=dict(otlp_headers or {}),
                                        timeout=EXPORT_TIMEOUT_S)
            self._export = BatchSpanProcessor(exporter, schedule_delay_millis=500)
        self._lock = threading.Lock()
        # build id -> span records not yet written (and exported)
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._counts = _Remembered()
        # why each build waited when it was submitted (the queue-wait span's reason),
        # for the builds this process admitted
        self._waited_for = _Remembered()
        # when each build's worker reported its end (build id -> time)
        self._completing = _Remembered()
        # when the executor started each job's worker (job id -> time)
        self._started = _Remembered()
        self._flusher: asyncio.Task[None] | None = None

    # --- writing spans --------------------------------------------------------------

    @staticmethod
    def traceparent(build_id: str) -> str:
        return traceparent(root_context(build_id))

    def _keep(self, build_id: str, record: dict[str, Any]) -> None:
        if self.store is None and self._export is None:
            return
        with self._lock:
            count = self._counts.get(build_id, 0) + 1
            self._counts.remember(build_id, count)
            if count <= MAX_SPANS_PER_BUILD:
                self._pending.setdefault(build_id, []).append(record)

    def record(self, build_id: str, name: str, start: float, end: float,
               **attributes: Any) -> None:
        """A span of the build that already happened, from `start` to `end`, a child of
        the build's root."""
        self._record(build_id, name, start, end, attributes, failed=False)

    def _record(self, build_id: str, name: str, start: float, end: float,
                attributes: dict[str, Any], *, failed: bool) -> None:
        self._keep(build_id, new_record(
            trace_id=trace_id_of(build_id), span_id=random.getrandbits(64) or 1,
            parent_id=root_span_id_of(build_id), name=name, service=self.service,
            start=start, end=end, status="error" if failed else "unset",
            attributes=attributes))

    @contextlib.contextmanager
    def span(self, build_id: str, name: str, **attributes: Any) -> Iterator[LiveSpan]:
        """A span of the build around the block (its status `error` when it raises)."""
        live = LiveSpan(dict(attributes))
        start = time.time()
        try:
            yield live
        except BaseException:
            live.failed = True
            raise
        finally:
            self._record(build_id, name, start, time.time(), live.attributes,
                         failed=live.failed)

    def completing(self, build_id: str) -> None:
        """The build's worker reported its end: the `completion` span begins."""
        self._completing.remember(build_id, time.time())

    def finish(self, build_id: str, submitted: float, phase: str, **attributes: Any) -> None:
        """The build's root span, from its submit to now (its end, in `phase`), and the
        `completion` span before it when its worker's report began it here."""
        now = time.time()
        completing = self._completing.pop(build_id, None)
        if completing is not None:
            self.record(build_id, "completion", completing, now, **{"slipway.phase": phase})
        self._keep(build_id, new_record(
            trace_id=trace_id_of(build_id), span_id=root_span_id_of(build_id),
            parent_id=None, name=ROOT_SPAN, service=self.service, start=submitted,
            end=now, status="error" if phase in ("error", "internalerror") else "unset",
            attributes={"slipway.phase": phase, **attributes}))
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
            # the manager names the build (the worker's own word is not taken)
            attributes = {k: v for k, v in (span.attributes or {}).items()
                          if k != BUILD_ATTRIBUTE}
            span._attributes = attributes
            self._keep(build_id, span_record(span))
            taken += 1
        return taken

    # --- the worker's start, as the manager sees it ---------------------------------

    def worker_started(self, job_id: str) -> None:
        """The executor started the job's worker (its registration ends the wait)."""
        self._started.remember(job_id, time.time())

    def registering(self, build_id: str, job_id: str) -> None:
        """The job's worker registers: the span from its executor's start to now (when
        this process started it)."""
        started = self._started.pop(job_id, None)
        if started is not None:
            self.record(build_id, "worker start", started, time.time())

    # --- why it waited --------------------------------------------------------------

    def admitted(self, build_id: str, waiting_for: str | None) -> None:
        self._waited_for.remember(build_id, waiting_for or "next")

    def waited_for(self, build_id: str, attempt: int) -> str:
        """Why the build waited for this claim: `retry` after an attempt, else why it
        waited when it was submitted ("unknown" when another process admitted it)."""
        if attempt > 1:
            return "retry"
        return str(self._waited_for.pop(build_id, "unknown"))

    # --- keeping and reading --------------------------------------------------------

    def pending(self, build_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pending.get(build_id, ()))

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        """The build's spans: those kept, and those of this process not yet written."""
        stored = [] if self.store is None else await self.store.read(build_id)
        seen = {s["span_id"] for s in stored}
        return stored + [s for s in self.pending(build_id) if s["span_id"] not in seen]

    async def flush(self) -> None:
        """Write the spans kept so far (and hand them to the exporter)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        if self._export is not None:
            for build_id, records in batch.items():
                for record in records:
                    self._export.on_end(self._as_readable(record, build_id))
        if self.store is None:
            return
        try:
            await self.store.append(batch)
        except Exception as exc:  # a trace is not worth failing a build for
            log.warning("could not keep the spans of %d builds (%s)", len(batch), exc)

    def _as_readable(self, record: dict[str, Any], build_id: str) -> ReadableSpan:
        resource = self.resource if record["service"] == self.service else Resource.create(
            {"service.name": record["service"]})
        return readable(record, build_id, resource)

    def flush_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop: the flusher or close writes them
            asyncio.get_running_loop().create_task(self.flush())

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        if self._export is not None:
            await asyncio.to_thread(self._export.shutdown)


def disabled() -> BuildTracing:
    """A tracer that keeps nothing (tests and tools that build parts alone)."""
    return BuildTracing(None)
