"""How a finished attempt maps to what happens to its queue item (docs/architecture.md,
step 5 of the flow)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from slipway.domain.phases import Phase

# Attempts a build has in all, as in Quay: its queue item starts with this many retries
# remaining, and each attempt uses one.
INITIAL_RETRIES = 3


class AttemptEnd(StrEnum):
    COMPLETED = "completed"  # worker reported COMPLETE
    USER_ERROR = "user_error"  # worker reported ERROR: the user's build failed
    CANCELLED = "cancelled"  # a user cancelled
    # ran past its timeout (its own, else MACHINE_MAX_TIME): retrying would time out again
    TIMED_OUT = "timed_out"
    NEVER_REGISTERED = "never_registered"  # infrastructure: worker missed SETUP_TIME
    HEARTBEAT_LOST = "heartbeat_lost"  # infrastructure: no heartbeat for the expiry period
    EXECUTOR_FAILED = "executor_failed"  # infrastructure: no executor could start a worker
    MANAGER_LOST = "manager_lost"  # infrastructure: the manager holding the build went away
    # infrastructure: the manager holding the build died and, the only manager that could
    # have held it, found it at its next start
    MANAGER_RESTARTED = "manager_restarted"
    # the manager was stopped (SIGTERM): the build goes back to the queue and the attempt
    # does not count against its tries
    MANAGER_SHUTDOWN = "manager_shutdown"


INFRASTRUCTURE_ENDS = frozenset(
    {
        AttemptEnd.NEVER_REGISTERED,
        AttemptEnd.HEARTBEAT_LOST,
        AttemptEnd.EXECUTOR_FAILED,
        AttemptEnd.MANAGER_LOST,
        AttemptEnd.MANAGER_RESTARTED,
    }
)
# retried at once rather than after RETRY_AFTER, which spaces out retries of trouble that
# may still be there: a restart is over once the manager that noticed it runs
RETRIED_AT_ONCE = frozenset({AttemptEnd.MANAGER_RESTARTED})


@dataclass(frozen=True)
class QueueAction:
    """retry: put the item back (its retries were already counted when it was claimed).
    Otherwise the item is done and the build ends in `final_phase`."""

    retry: bool
    final_phase: Phase | None


def decide(end: AttemptEnd, retries_remaining: int) -> QueueAction:
    """`retries_remaining` is the queue item's count after this attempt was counted."""
    if end is AttemptEnd.COMPLETED:
        return QueueAction(retry=False, final_phase=Phase.COMPLETE)
    if end is AttemptEnd.USER_ERROR:
        return QueueAction(retry=False, final_phase=Phase.ERROR)
    if end is AttemptEnd.CANCELLED:
        return QueueAction(retry=False, final_phase=Phase.CANCELLED)
    if end is AttemptEnd.TIMED_OUT:
        return QueueAction(retry=False, final_phase=Phase.INTERNAL_ERROR)
    if end is AttemptEnd.MANAGER_SHUTDOWN:
        return QueueAction(retry=True, final_phase=None)  # refunded: always runs again
    if retries_remaining > 0:
        return QueueAction(retry=True, final_phase=None)
    return QueueAction(retry=False, final_phase=Phase.INTERNAL_ERROR)


_DESCRIPTIONS = {
    AttemptEnd.NEVER_REGISTERED: "the build worker never registered with the build manager",
    AttemptEnd.HEARTBEAT_LOST: "the build worker stopped sending heartbeats",
    AttemptEnd.EXECUTOR_FAILED: "no executor could start a build worker",
    AttemptEnd.MANAGER_LOST: "the build manager running the build went away",
    AttemptEnd.MANAGER_RESTARTED: "the build manager restarted while it ran",
    AttemptEnd.TIMED_OUT: "the build ran past its timeout",
    AttemptEnd.MANAGER_SHUTDOWN: "the build manager was stopped",
}


def describe(end: AttemptEnd) -> str:
    return _DESCRIPTIONS.get(end, end.value.replace("_", " "))


def attempt_label(number: int, tries_used: int, total: int) -> str:
    """How a log line names an attempt. `number` counts every attempt the build had;
    `tries_used` only those that count against its `total` (an attempt given back at a
    manager's shutdown does not): "Attempt 2 of 3", or "Attempt 3 (try 2 of 3)"."""
    if number == tries_used:
        return f"Attempt {number} of {total}"
    return f"Attempt {number} (try {tries_used} of {total})"


# ends whose detail, when given, is the whole message: it names the limit and who set it
# (build_limits.timed_out_message)
_DETAIL_IS_THE_MESSAGE = frozenset({AttemptEnd.TIMED_OUT})


def failure_message(end: AttemptEnd, tries_used: int, detail: str = "") -> str:
    """The message a user reads on a build that ended `internalerror`."""
    if detail and end in _DETAIL_IS_THE_MESSAGE:
        return detail
    text = describe(end)
    if end in INFRASTRUCTURE_ENDS:
        text += f" (after {tries_used} attempt{'s' if tries_used != 1 else ''})"
    return f"{text}: {detail}" if detail else text


def retry_message(end: AttemptEnd, label: str, detail: str = "") -> str:
    """The log line a user reads when an attempt failed and the build goes back in the
    queue; `label` is the attempt's attempt_label."""
    text = f"{label} failed: {describe(end)}"
    if detail:
        text += f": {detail}"
    return text + "; the build will be retried"
