"""Turning a worker's docker-JSON log line into a stored log entry (docs/protocol.md)."""

from __future__ import annotations

import json
import re

from slipway.store.records import LogEntry

# docker: "Step 3/7 : RUN ..."; podman/buildah: "STEP 3/7: RUN ...", and in multi-stage
# builds "[1/2] STEP 3/7: RUN ..."
_STEP = re.compile(r"^\s*(\[\d+/\d+\] )?(Step \d+/\d+ :|STEP \d+/\d+:)")


class BadLogLine(ValueError):
    pass


def parse_log_line(raw: str, phase: str = "") -> list[LogEntry]:
    """The entries one LogMessage stores: a `stream` that holds several lines (docker
    sends such chunks, and slipway's worker sends lines that are ready together as one
    message) gives one entry per line; `error` and `status` give one entry."""
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise BadLogLine("log_message is not JSON") from exc
    if not isinstance(obj, dict):
        raise BadLogLine("log_message is not a JSON object")
    data: dict[str, object] = {}
    if phase:
        data["phase"] = phase
    if obj.get("error") is not None:
        return [LogEntry(str(obj["error"]).rstrip("\n"), "error", data)]
    if obj.get("status") is not None:
        for key in ("id", "progressDetail"):
            if obj.get(key):
                data[key] = obj[key]
        return [LogEntry(str(obj["status"]).rstrip("\n"), None, data)]
    if obj.get("stream") is not None:
        text = str(obj["stream"])
        lines = (text[:-1] if text.endswith("\n") else text).split("\n")
        return [LogEntry(line, "command" if _STEP.match(line) else None, data) for line in lines]
    raise BadLogLine("log_message has none of error, status, stream")
