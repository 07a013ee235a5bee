"""Build records as the API shows them (Quay's build object plus slipway's fields)."""

from __future__ import annotations

import datetime as dt
import email.utils

from slipway.api.models import BuildOut, Repository
from slipway.domain.phases import Phase
from slipway.domain.results import describe
from slipway.store.records import BuildRecord, WaitReason

EXPIRED = "expired"


def rfc2822(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return email.utils.format_datetime(moment, usegmt=True)


def api_phase(record: BuildRecord) -> str:
    """Quay shows `expired` for an internal error with no retries left."""
    if record.phase is Phase.INTERNAL_ERROR and record.retries_remaining <= 0:
        return EXPIRED
    return record.phase.value


def waiting_text(reason: WaitReason, record: BuildRecord) -> str:
    """The build object's status.waiting_for: why it is not running yet."""
    if reason.kind == "retry" and reason.until is not None:
        moment = dt.datetime.fromtimestamp(reason.until, dt.UTC).strftime("%H:%M:%S UTC")
        return f"retry after {moment} (its last attempt failed; RETRY_AFTER)"
    if reason.kind == "repository":
        state = "is running" if reason.running else "is ahead of it in the queue"
        return (f"build {reason.build_id} of {record.full_repository} {state} (one build "
                "per repository at a time)")
    if reason.kind == "namespace":
        return (f"namespace {record.namespace} runs {reason.limit} builds, its limit "
                "(NAMESPACE_LIMITS)")
    if reason.kind == "workers":
        return f"all {reason.limit} workers are busy (ALLOWED_WORKER_COUNT)"
    last = record.attempts[-1] if record.attempts else None
    if last is not None and last.outcome is not None:
        # back in the queue to run again at once: say what ended the last attempt (a
        # manager's restart or shutdown), not only that a worker is being found
        return (f"a worker is being started for it again (attempt {last.attempt}: "
                f"{describe(last.outcome)})")
    return "a worker is being started for it"


def build_view(record: BuildRecord, waiting: WaitReason | None = None) -> BuildOut:
    # pull_credentials are deliberately absent: they are never returned
    status = record.status
    if waiting is not None and record.phase is Phase.WAITING:
        status = {**status, "waiting_for": waiting_text(waiting, record)}
    return BuildOut(
        id=record.id,
        phase=api_phase(record),
        started=rfc2822(record.started) or "",
        display_name=record.display_name,
        status=status,
        subdirectory=record.subdirectory,
        dockerfile_path=record.dockerfile_path,
        context=record.context,
        tags=record.tags,
        manual_user=record.manual_user,
        trigger=record.trigger,
        trigger_metadata=record.trigger_metadata,
        resource_key=record.resource_key,
        pull_robot=record.pull_robot,
        repository=Repository(namespace=record.namespace, name=record.repository),
        error=record.error,
        archive_url=record.archive_url,
        image_digest=record.image_digest,
        retries_remaining=record.retries_remaining,
        executor=record.executor,
        completed=rfc2822(record.completed),
        attempts=[attempt.stored() for attempt in record.attempts],
        options=record.options,
    )
