"""The phase state machine and the result -> queue action rules."""

from __future__ import annotations

import pytest

from slipway.domain.phases import FINAL_PHASES, Phase, can_transition
from slipway.domain.results import AttemptEnd, decide


@pytest.mark.parametrize("final", sorted(FINAL_PHASES))
def test_nothing_leaves_a_final_phase(final: Phase) -> None:
    assert not any(can_transition(final, p) for p in Phase)


def test_worker_phases_move_forward_only() -> None:
    assert can_transition(Phase.UNPACKING, Phase.BUILDING)
    assert not can_transition(Phase.BUILDING, Phase.UNPACKING)
    assert can_transition(Phase.PUSHING, Phase.COMPLETE)


def test_cancellation_stops_at_pushing() -> None:
    for phase in (Phase.WAITING, Phase.BUILD_SCHEDULED, Phase.UNPACKING, Phase.PULLING,
                  Phase.BUILDING):
        assert phase.is_cancellable and can_transition(phase, Phase.CANCELLED)
    assert not Phase.PUSHING.is_cancellable
    assert not can_transition(Phase.PUSHING, Phase.CANCELLED)


def test_user_error_is_not_retried_infrastructure_is() -> None:
    assert decide(AttemptEnd.USER_ERROR, 2).final_phase is Phase.ERROR
    assert decide(AttemptEnd.NEVER_REGISTERED, 1).retry
    last = decide(AttemptEnd.HEARTBEAT_LOST, 0)
    assert not last.retry and last.final_phase is Phase.INTERNAL_ERROR
    assert decide(AttemptEnd.TIMED_OUT, 2).final_phase is Phase.INTERNAL_ERROR
