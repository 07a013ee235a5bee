"""The phase state machine, the result -> queue action rules and the attempt records."""

from __future__ import annotations

import pytest

from slipway.domain.attempts import load_attempts
from slipway.domain.phases import (
    CANCELLABLE_PHASES,
    FINAL_PHASES,
    UNDER_WAY_PHASES,
    Phase,
    can_transition,
    sources_of,
)
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


def test_a_new_attempt_takes_over_from_any_phase_a_lost_one_reached() -> None:
    """The recovery move: a build whose manager was lost mid-build is scheduled again."""
    assert sources_of(Phase.BUILD_SCHEDULED) == {Phase.WAITING, *UNDER_WAY_PHASES}


def test_an_attempt_ends_from_any_phase_it_reached() -> None:
    for end in (Phase.WAITING, Phase.COMPLETE, Phase.ERROR, Phase.INTERNAL_ERROR):
        assert sources_of(end) == {p for p in Phase if not p.is_final}


@pytest.mark.parametrize("target", list(Phase))
def test_the_stores_guard_is_the_table(target: Phase) -> None:
    """move_phase's guard (sources_of) says what can_transition says, move by move."""
    assert sources_of(target) == {p for p in Phase if can_transition(p, target)}
    assert sources_of(Phase.CANCELLED) == CANCELLABLE_PHASES


def test_user_error_is_not_retried_infrastructure_is() -> None:
    assert decide(AttemptEnd.USER_ERROR, 2).final_phase is Phase.ERROR
    assert decide(AttemptEnd.NEVER_REGISTERED, 1).retry
    last = decide(AttemptEnd.HEARTBEAT_LOST, 0)
    assert not last.retry and last.final_phase is Phase.INTERNAL_ERROR
    assert decide(AttemptEnd.TIMED_OUT, 2).final_phase is Phase.INTERNAL_ERROR


@pytest.mark.parametrize("stored", [
    {"attempt": 1, "executor": "local", "worker_id": "w-1", "started": 10.5},
    {"attempt": 2, "executor": "ec2", "worker_id": "i-0", "started": 10.0, "ended": 12.0,
     "outcome": "heartbeat_lost"},
    {"attempt": 1, "executor": "local", "worker_id": "w-1", "started": 1.0, "ended": 2.0,
     "outcome": "manager_shutdown", "counted": False},
])
def test_an_attempt_record_keeps_the_json_it_was_stored_as(stored: dict[str, object]) -> None:
    """What the API shows of an attempt is the stored JSON, key for key, in order."""
    (record,) = load_attempts([stored])
    assert list(record.stored().items()) == list(stored.items())


def test_closing_an_attempt_records_its_outcome_and_whether_it_counted() -> None:
    (started,) = load_attempts([{"attempt": 3, "executor": "local", "worker_id": "w",
                                 "started": 1.0}])
    assert started.is_open
    ended = started.closed(AttemptEnd.COMPLETED, 5.0)
    assert ended.stored() == {"attempt": 3, "executor": "local", "worker_id": "w",
                              "started": 1.0, "ended": 5.0, "outcome": "completed"}
    given_back = started.closed(AttemptEnd.MANAGER_SHUTDOWN, 5.0, counted=False)
    assert given_back.stored()["counted"] is False and not given_back.is_open
