"""Orchestrator key names shared by managers and the API."""

from __future__ import annotations

from slipway.orchestrator.base import KeyEventKind

JOB_PREFIX = "job/"  # job/{job_id} -> JobState JSON; expires at the registration/heartbeat deadline
# deadline/{job_id} -> JobState JSON; expires at the build's timeout (at most MACHINE_MAX_TIME)
DEADLINE_PREFIX = "deadline/"
CANCEL_PREFIX = "cancel/"  # cancel/{build_id}: a user cancelled; the job's manager stops it
CANCEL_MARK_TTL = 3600.0  # a cancel key outlives any worker's retries of its calls
WAKE_KEY = "wake"  # touched on every submit so managers in other processes schedule at once
REGISTERED_PREFIX = "registered/"  # registered/{jti}: a spent registration token
# ended/{job_id}: the end of an attempt whose job key was already gone (expired or lost) was
# taken by one manager; the expiry handler and the reconciler may both try
ENDED_PREFIX = "ended/"

_NONE: frozenset[KeyEventKind] = frozenset()
# The events managers act on, by key prefix: manager/events.py subscribes to these.
ACTED_ON = {
    JOB_PREFIX: frozenset({KeyEventKind.DELETE, KeyEventKind.EXPIRE}),
    DEADLINE_PREFIX: frozenset({KeyEventKind.EXPIRE}),
    CANCEL_PREFIX: frozenset({KeyEventKind.CREATE, KeyEventKind.SET}),
    WAKE_KEY: frozenset({KeyEventKind.CREATE, KeyEventKind.SET}),
    REGISTERED_PREFIX: _NONE,
    ENDED_PREFIX: _NONE,
}
_WRITES = frozenset({KeyEventKind.CREATE, KeyEventKind.SET, KeyEventKind.DELETE})
# The write events nobody acts on are left unpublished: each build's job, deadline and
# token writes would otherwise be five messages that every manager receives and drops
# (benchmarks/README.md). EXPIRE is never published; the
# sweep delivers it.
UNPUBLISHED_EVENTS = {prefix: _WRITES - kinds for prefix, kinds in ACTED_ON.items()}


def job_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def deadline_key(job_id: str) -> str:
    return f"{DEADLINE_PREFIX}{job_id}"


def ended_key(job_id: str) -> str:
    return f"{ENDED_PREFIX}{job_id}"


def cancel_key(build_id: str) -> str:
    return f"{CANCEL_PREFIX}{build_id}"
