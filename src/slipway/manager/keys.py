"""Orchestrator key names shared by managers and the API."""

from __future__ import annotations

JOB_PREFIX = "job/"  # job/{job_id} -> JobState JSON; expires at the registration/heartbeat deadline
DEADLINE_PREFIX = "deadline/"  # deadline/{job_id} -> JobState JSON; expires at MACHINE_MAX_TIME
CANCEL_PREFIX = "cancel/"  # cancel/{build_id}: a user cancelled; the job's manager stops it
WAKE_KEY = "wake"  # touched on every submit so managers in other processes schedule at once
REGISTERED_PREFIX = "registered/"  # registered/{jti}: a spent registration token
# ended/{job_id}: the end of an attempt whose job key was already gone (expired or lost) was
# taken by one manager; the expiry handler and the reconciler may both try
ENDED_PREFIX = "ended/"


def job_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def deadline_key(job_id: str) -> str:
    return f"{DEADLINE_PREFIX}{job_id}"


def ended_key(job_id: str) -> str:
    return f"{ENDED_PREFIX}{job_id}"


def cancel_key(build_id: str) -> str:
    return f"{CANCEL_PREFIX}{build_id}"
