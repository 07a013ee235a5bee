"""Live build logs as Server-Sent Events.

Each log entry is one `log` event whose `id` is the entry's number, so a client that
reconnects with `Last-Event-ID` (or `?start=`) resumes where it stopped. When the build
is final and every entry has been sent, an `end` event carries the build object and the
stream closes. When the server stops, the stream closes without one (the client
reconnects and resumes). The store is polled (one indexed row read per tick): log lines are
written by whichever manager holds the build, possibly in another process.
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
    while True:
        # checked before the read: what was written before the server began to stop
        # (the manager's last entries) is still sent
        closed = closed or d.closing.is_set()
        record = await d.store.builds.get(build_id)
        if record is None:
            return
        # read the phase before the entries: entries written before a final phase are
        # then always seen before the end event
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
            return  # the server stops: the client reconnects and resumes from `position`
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_SECONDS):
                await d.closing.wait()


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
