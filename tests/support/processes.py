"""Whether a process still runs (a zombie not yet reaped counts as gone)."""

from __future__ import annotations


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone while /proc was read
        return False
