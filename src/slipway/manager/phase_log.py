"""Every phase change is also a log entry (type "phase")."""

from __future__ import annotations

from typing import Any

from slipway.domain.phases import Phase
from slipway.store.records import LogEntry


def phase_entry(phase: Phase, **data: Any) -> LogEntry:
    return LogEntry(message=phase.value, type="phase", data={k: v for k, v in data.items() if v})
