"""Live build logs as Server-Sent Events.

Each log entry is one `log` event whose `id` is the entry's number, so a client that
reconnects with `Last-Event-ID` (or `?start=`) resumes where it stopped. When the build
is final and every entry has been sent, an `end` event carries the build object and the
stream closes. When the server stops, the stream closes without one (the client
reconnects and resumes). Log lines are written by whichever manager holds the build: when
it runs in this process, each of its commits wakes the stream (store/build_changes.py);
one in another process is seen by the poll (one indexed row read per tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.models import ErrorOut
from slipway.api.routes_builds import MAX_LOG_INDEX, PREFIX, load_build
from slipway.api.serialize import build_view
from slipway.store.records import LogEntry

POLL_SECONDS = 0.1
# a build that logs fast commits many times a second: its stream reads at most READS_PER_S
# times a second, after a burst of READ_BURST at once (the last lines and the end, which
# come together, are then read without a wait)
READS_PER_S = 50.0
READ_BURST = 5
KEEPALIVE_SECONDS = 15.0
# entries per read and write while the stream is behind: a finished 100,000-line log is
# 20 reads and writes
BATCH = 5000
# one encoder for every event: json.dumps with separators builds a new one per call
_encode = json.JSONEncoder(separators=(",", ":")).encode

router = APIRouter(prefix=PREFIX, tags=["builds"])


def event(kind: str, data: object, event_id: int | None = None) -> bytes:
    lines = [f"event: {kind}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {_encode(data)}")
    return ("\n".join(lines) + "\n\n").encode()


def log_events_text(entries: list[LogEntry], first: int) -> bytes:
    """`log` events for `entries`, numbered from `first`: what event() writes, in one
    string (this is most of the stream's work for a long log)."""
    encode = _encode
    return "".join([f"event: log\nid: {first + i}\ndata: {encode(e.as_api())}\n\n"
                    for i, e in enumerate(entries)]).encode()


async def log_events(d: ApiDeps, build_id: str, start: int) -> AsyncIterator[bytes]:
    position = start
    last_sent = time.monotonic()
    yield b"retry: 1000\n\n"
    closed = False
    pace = ReadPace(READS_PER_S, READ_BURST)
    with d.store.changes.watch(build_id) as changed:
        # the server's stop wakes the stream too: one wait, for either
        waking = asyncio.create_task(_set_when_set(d.closing, changed))
        try:
            while True:
                # cleared before the read: a change committed after it sets it again
                changed.clear()
                # checked before the read: what was written before the server began to
                # stop (the manager's last entries) is still sent
                closed = closed or d.closing.is_set()
                record = await d.store.builds.get(build_id)
                if record is None:
                    return
                # read the phase before the entries: entries written before a final
                # phase are then always seen before the end event
                final = record.phase.is_final
                if record.log_count > position:
                    _, entries = await d.store.logs.read(build_id, position, limit=BATCH)
                    # one write per batch, not one per entry
                    yield log_events_text(entries, position)
                    position += len(entries)
                    last_sent = time.monotonic()
                    if len(entries) == BATCH:
                        continue
                if final and position >= (await d.store.logs.count(build_id)):
                    yield event("end", build_view(record).model_dump(mode="json"))
                    return
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    yield b": keepalive\n\n"
                    last_sent = time.monotonic()
                if closed:
                    return  # the server stops: the client resumes from `position`
                await _next_change(changed, d.closing, pace)
        finally:
            waking.cancel()


async def _next_change(changed: asyncio.Event, closing: asyncio.Event, pace: ReadPace) -> None:
    """Until a change here is committed, the server stops, or the poll's tick (a writer in
    another process); then as long as the pace asks."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(POLL_SECONDS):
            await changed.wait()
    if not closing.is_set():
        await asyncio.sleep(pace.next_read())


class ReadPace:
    """A token bucket: `burst` reads at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def next_read(self) -> float:
        """Seconds to wait before the next read (which this counts)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate) - 1
        self.updated = now
        return max(0.0, -self.tokens / self.rate)


async def _set_when_set(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


@router.get(
    "/{build_id}/logs/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "log and end events"},
        **{code: {"model": ErrorOut} for code in (400, 401, 403, 404)},
    },
)
async def stream_logs(
    namespace: str,
    repository: str,
    build_id: str,
    d: Annotated[ApiDeps, Depends(get_deps)],
    _p: Annotated[Principal, Depends(require(Role.READ))],
    start: Annotated[int, Query(ge=0, le=MAX_LOG_INDEX, description="first entry to send")]
    = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The build's log entries as Server-Sent Events (`log` events, then one `end`)."""
    await load_build(d, namespace, repository, build_id)
    if last_event_id is not None and last_event_id.isdigit() and len(last_event_id) <= 10:
        start = max(start, min(int(last_event_id) + 1, MAX_LOG_INDEX))
    return StreamingResponse(
        log_events(d, build_id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
