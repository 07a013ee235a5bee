"""Phases and log lines to the manager, with one increasing sequence number.

Log lines go out on one long-lived LogMessage stream; lines not yet acknowledged are
re-sent on a new stream when the connection drops. A phase is only sent once every
earlier log line is acknowledged, so the manager sees them in order.

Output lines that are ready together go out as one message, `{"stream": "a\nb\n"}`, as
docker sends its own chunks (the manager stores one entry per line). A line that comes
alone goes out alone, at once; a flood of output costs one message per up to
MESSAGE_LINES lines instead of one per line, which is what lets the manager keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import grpc

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import BuildManagerStub
from slipway.tracing.wire import SPANS_KEY
from slipway.worker.attempt_ended import attempt_ended
from slipway.worker.errors import AttemptEnded, ManagerUnreachable
from slipway.worker.retry import (
    CALL_TIMEOUT,
    RetryWindow,
    call_with_retry,
    describe,
    is_retryable,
)
from slipway.worker.tracing import WorkerTrace

log = logging.getLogger("slipway.worker")

# bounds of one coalesced log message (the manager accepts messages of up to 16 MiB)
MESSAGE_LINES = 64
MESSAGE_BYTES = 64 * 1024

PHASE_NAMES = {
    pb.WAITING: "waiting",
    pb.UNPACKING: "unpacking",
    pb.PULLING: "pulling",
    pb.BUILDING: "building",
    pb.PUSHING: "pushing",
    pb.COMPLETE: "complete",
    pb.ERROR: "error",
}


class Reporter:
    def __init__(
        self,
        stub: BuildManagerStub,
        job_jwt: str,
        *,
        retry_window: float = 60.0,
        secrets: list[str] | None = None,
        trace: WorkerTrace | None = None,
    ) -> None:
        self._stub = stub
        # the build's spans go with its last phase (tracing/wire.py); masked as the log is
        self.trace = trace
        if trace is not None:
            trace.mask = self.mask
        self._jwt = job_jwt
        self._window = retry_window
        # longest first, so a secret containing another is masked whole
        self._secrets = sorted({s for s in (secrets or []) if len(s) >= 4}, key=len, reverse=True)
        self._seq = 0
        self._phase = "waiting"
        self._lines: list[dict[str, str]] = []  # queued, not yet made into a message
        self._outbox: list[pb.LogMessageRequest] = []  # sent or not, not yet acknowledged
        self._sent = 0  # how many of _outbox went out on the current stream
        self._changed = asyncio.Condition()
        self._closing = False
        self.end_reported = False  # COMPLETE or ERROR delivered: only clean-up is left
        self._failure: ManagerUnreachable | AttemptEnded | None = None
        # set once the manager refused a call because this attempt was ended: the agent
        # stops the build at once, whatever it is doing (worker/agent.py)
        self.ended = asyncio.Event()
        self.ended_reason: AttemptEnded | None = None
        self._task: asyncio.Task[None] | None = None

    # -- public ------------------------------------------------------------------------
    def add_secret(self, value: str) -> None:
        if len(value) >= 4 and value not in self._secrets:
            self._secrets = sorted([*self._secrets, value], key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def log(self, line: str) -> None:
        """One line of output, as docker's JSON stream entry."""
        await self._enqueue({"stream": self.mask(line) + "\n"})

    async def log_error(self, message: str) -> None:
        await self._enqueue({"error": self.mask(message)})

    async def phase(
        self,
        phase: pb.Phase,
        *,
        pull_metadata: pb.SetPhaseRequest.PullMetadata | None = None,
        image_digest: str = "",
        error_message: str = "",
        attestations: str = "",
    ) -> bool:
        """Send a phase after all earlier log lines; True if the manager accepted it."""
        try:
            async with asyncio.timeout(self._window + CALL_TIMEOUT):
                await self.flush()
        except TimeoutError:
            # a manager that never acknowledges must not hold the build up forever
            log.warning("log lines not acknowledged; sending phase anyway")
        self._phase = PHASE_NAMES.get(phase, "")
        request = pb.SetPhaseRequest(
            job_jwt=self._jwt,
            sequence_number=self._next_seq(),
            phase=phase,
            image_digest=image_digest,
            error_message=self.mask(error_message),
            attestations=attestations,
        )
        if pull_metadata is not None:
            request.pull_metadata.CopyFrom(pull_metadata)
        metadata: tuple[tuple[str, str | bytes], ...] = ()
        if phase in (pb.COMPLETE, pb.ERROR) and self.trace is not None:
            spans = self.trace.finished_spans()
            if spans:
                metadata = ((SPANS_KEY, spans),)
        attempts = 0

        async def send() -> pb.SetPhaseResponse:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # a new number for each retry: a try that failed (the manager's database
                # down) may have kept its number in the job while its phase was never
                # written, and the same number again would be refused as a duplicate
                request.sequence_number = self._next_seq()
            try:
                return await self._stub.SetPhase(request, timeout=CALL_TIMEOUT,
                                                 metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                ended = attempt_ended(exc, f"SetPhase({self._phase})")
                if ended is None:
                    raise
                self._attempt_ended(ended)
                raise ended from None  # not retried

        response = await call_with_retry(f"SetPhase({self._phase})", self._window, send)
        if phase in (pb.COMPLETE, pb.ERROR):
            self.end_reported = True
        if not response.success and attempts == 1:
            log.warning("the manager refused phase %s", self._phase)
            return False
        return True  # a refused retry means the first attempt landed

    async def flush(self) -> None:
        """Wait until every queued log line is acknowledged (or the stream gave up)."""
        self._ensure_started()
        async with self._changed:
            await self._changed.wait_for(
                lambda: not (self._outbox or self._lines) or self._failure is not None
            )
        if self._failure is not None:
            raise self._failure

    async def close(self) -> None:
        """Deliver what is queued (best effort) and end the stream."""
        if self._task is None:
            return
        with contextlib.suppress(ManagerUnreachable, AttemptEnded):
            await self.flush()
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # -- internals ---------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="slipway-log-stream")

    async def _enqueue(self, entry: dict[str, str]) -> None:
        self._ensure_started()
        async with self._changed:
            if self._failure is None:
                self._lines.append(entry)
                self._changed.notify_all()

    def _make_messages(self) -> None:
        """Turn the queued lines into messages: runs of `stream` lines share one."""
        for entry in coalesce(self._lines):
            self._outbox.append(
                pb.LogMessageRequest(
                    job_jwt=self._jwt,
                    sequence_number=self._next_seq(),
                    log_message=json.dumps(entry),
                    phase=self._phase,
                )
            )
        self._lines = []

    async def _run(self) -> None:
        backoff = RetryWindow(self._window)
        while True:
            call = self._stub.LogMessage()
            reader = asyncio.create_task(self._read_acks(call, backoff))
            # its failure is handled through _write_all; never "exception not retrieved"
            reader.add_done_callback(lambda t: t.cancelled() or t.exception())
            try:
                await self._write_all(call, reader)
                return
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                error: BaseException = exc
                if reader.done() and reader.exception() is not None:
                    error = reader.exception() or exc
                ended = attempt_ended(error, "LogMessage")
                if ended is not None:
                    self._attempt_ended(ended)
                    await self._fail(ended)
                    return
                if not is_retryable(error) and isinstance(error, grpc.aio.AioRpcError):
                    await self._fail(
                        ManagerUnreachable(f"LogMessage: the manager refused ({describe(error)})")
                    )
                    return
                try:
                    await backoff.wait("LogMessage", error)
                except ManagerUnreachable as gave_up:
                    await self._fail(gave_up)
                    return
            finally:
                reader.cancel()
                call.cancel()
            async with self._changed:
                self._sent = 0  # re-send everything not acknowledged on the new stream

    async def _write_all(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Task[None]) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: self._sent < len(self._outbox)
                    or self._lines
                    or self._closing
                    or reader.done()
                )
                if reader.done():
                    exc = reader.exception()
                    raise exc if exc is not None else asyncio.InvalidStateError("stream ended")
                self._make_messages()
                if self._closing and self._sent >= len(self._outbox):
                    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                        await call.done_writing()
                    return
                batch = self._outbox[self._sent :]
                self._sent = len(self._outbox)
            for request in batch:
                await call.write(request)

    async def _read_acks(self, call: grpc.aio.StreamStreamCall, backoff: RetryWindow) -> None:
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise asyncio.InvalidStateError("the manager ended the log stream")
                backoff.reset()
                async with self._changed:
                    seq = response.sequence_number
                    if not response.success:
                        log.warning("the manager refused log line %d", seq)
                    # responses come in order; drop everything up to the acknowledged one
                    acked = 1
                    if seq:
                        acked = sum(1 for r in self._outbox if r.sequence_number <= seq) or 1
                    del self._outbox[:acked]
                    self._sent = max(0, self._sent - acked)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()

    def _attempt_ended(self, refusal: AttemptEnded) -> None:
        if self.ended_reason is None:
            self.ended_reason = refusal
        self.ended.set()

    async def _fail(self, failure: ManagerUnreachable | AttemptEnded) -> None:
        if isinstance(failure, AttemptEnded):
            log.warning("%s", failure)  # the manager's word, not the worker's trouble
        else:
            log.error("%s", failure)
        async with self._changed:
            self._failure = failure
            self._lines.clear()
            self._outbox.clear()
            self._changed.notify_all()


def coalesce(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """Consecutive `stream` entries joined, within MESSAGE_LINES and MESSAGE_BYTES; other
    entries (errors) stay as they are, in their place."""
    out: list[dict[str, str]] = []
    lines = size = 0
    for entry in entries:
        text = entry.get("stream")
        last = out[-1] if out else None
        if (
            text is not None
            and last is not None
            and "stream" in last
            and lines < MESSAGE_LINES
            and size + len(text) <= MESSAGE_BYTES
        ):
            last["stream"] += text
            lines, size = lines + 1, size + len(text)
            continue
        out.append(dict(entry))
        lines, size = 1, len(text or "")
    return out
