"""Build phases (the API's names) and the one table of the moves between them.

Every writer of a build's phase goes through the store's `move_phase`
(store/interfaces.py `BuildRecords`), which moves a build only from a phase
`sources_of(target)` names, in the same statement: the table below is the only place a
move is allowed, for the SQL store and for Quay's `repositorybuild` rows alike.
"""

from __future__ import annotations

from collections.abc import Mapping
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
# a build in one of these is queued or has an attempt under way
ACTIVE_PHASES = frozenset(p for p in Phase if p not in FINAL_PHASES)
# a build in one of these has an attempt under way
UNDER_WAY_PHASES = ACTIVE_PHASES - {Phase.WAITING}
CANCELLABLE_PHASES = frozenset(
    {Phase.WAITING, Phase.BUILD_SCHEDULED, Phase.UNPACKING, Phase.PULLING, Phase.BUILDING}
)

_W, _S = Phase.WAITING, Phase.BUILD_SCHEDULED
_U, _PL, _B, _PS = Phase.UNPACKING, Phase.PULLING, Phase.BUILDING, Phase.PUSHING
_C = Phase.CANCELLED
# An attempt ends from whatever phase its build reached: the build goes back to the queue
# (`waiting`, to be retried) or to its final phase.
_ENDS = frozenset({Phase.WAITING, Phase.COMPLETE, Phase.ERROR, Phase.INTERNAL_ERROR})

# Where a build may move from each phase. Columns, by who makes the move:
# - scheduling: an attempt starts (`build-scheduled`). From a phase past `waiting` this is
#   the recovery move: a new attempt takes over a build whose previous attempt was lost
#   with its manager (manager/attempts.py closes that attempt `manager_lost`);
# - the worker: forward only; it may skip a phase (no pull needed), and a phase reported
#   again is an idempotent resend;
# - the attempt's end (_ENDS);
# - a user's cancel, until the push begins (Quay's rule).
MOVES: Mapping[Phase, frozenset[Phase]] = {
    _W: frozenset({_S, *_ENDS, _C}),
    _S: frozenset({_S, _U, _PL, _B, _PS, *_ENDS, _C}),
    _U: frozenset({_S, _U, _PL, _B, _PS, *_ENDS, _C}),
    _PL: frozenset({_S, _PL, _B, _PS, *_ENDS, _C}),
    _B: frozenset({_S, _B, _PS, *_ENDS, _C}),
    _PS: frozenset({_S, _PS, *_ENDS}),
    # nothing leaves a final phase
    **{final: frozenset() for final in FINAL_PHASES},
}

_SOURCES: Mapping[Phase, frozenset[Phase]] = {
    target: frozenset(p for p, targets in MOVES.items() if target in targets)
    for target in Phase
}


def can_transition(current: Phase, new: Phase) -> bool:
    """True when a build in `current` may move to `new`."""
    return new in MOVES[current]


def sources_of(target: Phase) -> frozenset[Phase]:
    """The phases a build may move to `target` from: the guard of the store's move."""
    return _SOURCES[target]


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
