"""Build phases (the API's names) and the state machine that says which changes are allowed."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    WAITING = "waiting"
    BUILD_SCHEDULED = "build-scheduled"
    UNPACKING = "unpacking"
    PULLING = "pulling"
    BUILDING = "building"
    PUSHING = "pushing"
    COMPLETE = "complete"
    ERROR = "error"
    INTERNAL_ERROR = "internalerror"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_PHASES

    @property
    def is_cancellable(self) -> bool:
        """Quay refuses cancellation from `pushing` on: the image may already be half pushed."""
        return self in CANCELLABLE_PHASES


FINAL_PHASES = frozenset({Phase.COMPLETE, Phase.ERROR, Phase.INTERNAL_ERROR, Phase.CANCELLED})
CANCELLABLE_PHASES = frozenset(
    {Phase.WAITING, Phase.BUILD_SCHEDULED, Phase.UNPACKING, Phase.PULLING, Phase.BUILDING}
)

# Worker-reported phases move forward only; a worker may skip a phase (e.g. no pull needed).
_WORKER_ORDER = [Phase.UNPACKING, Phase.PULLING, Phase.BUILDING, Phase.PUSHING]

_ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.WAITING: frozenset({Phase.BUILD_SCHEDULED, Phase.CANCELLED, Phase.INTERNAL_ERROR}),
    Phase.BUILD_SCHEDULED: frozenset(
        {*_WORKER_ORDER, Phase.WAITING, Phase.COMPLETE, Phase.ERROR, Phase.INTERNAL_ERROR,
         Phase.CANCELLED}
    ),
}
for _i, _p in enumerate(_WORKER_ORDER):
    _later = set(_WORKER_ORDER[_i:])  # same phase again is allowed (idempotent resend)
    _ends = {Phase.COMPLETE, Phase.ERROR, Phase.INTERNAL_ERROR, Phase.WAITING}
    if _p.is_cancellable:
        _ends.add(Phase.CANCELLED)
    _ALLOWED[_p] = frozenset(_later | _ends)
for _f in FINAL_PHASES:
    _ALLOWED[_f] = frozenset()


def can_transition(current: Phase, new: Phase) -> bool:
    """True when a build in `current` may move to `new`. Nothing leaves a final phase."""
    return new in _ALLOWED[current]


class InvalidTransition(ValueError):
    def __init__(self, current: Phase, new: Phase) -> None:
        super().__init__(f"a build in phase {current.value!r} cannot move to {new.value!r}")
        self.current = current
        self.new = new


def check_transition(current: Phase, new: Phase) -> None:
    if not can_transition(current, new):
        raise InvalidTransition(current, new)


# Protocol enum numbers (buildman_pb.Phase) <-> API phases.
PROTOCOL_PHASES: dict[int, Phase] = {
    0: Phase.WAITING,
    1: Phase.UNPACKING,
    2: Phase.PULLING,
    3: Phase.BUILDING,
    4: Phase.PUSHING,
    5: Phase.COMPLETE,
    6: Phase.ERROR,
}
