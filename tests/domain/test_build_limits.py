"""Durations as users write them, and the messages a build's time limits end it with."""

from __future__ import annotations

import pytest

from slipway.domain.build_limits import (
    BuildLimit,
    configured_limit,
    queue_expired_message,
    timed_out_message,
)
from slipway.domain.durations import InvalidDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), ("90", 90), ("90s", 90), ("20m", 1200), ("1h30m", 5400), ("2H", 7200),
     (" 1h ", 3600), (60.0, 60)],
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "20x", "m", "-5", "1.5h", "1h30", 0, -1, 1.5, True, None, [60]])
def test_not_durations(value: object) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(value)


def test_durations_are_shown_as_written() -> None:
    assert [format_duration(s) for s in (1200, 5400, 90, 7200, 1)] == [
        "20m", "1h30m", "1m30s", "2h", "1s"]


def test_a_namespace_value_wins_over_the_default() -> None:
    assert configured_limit("QUEUE_TTL", 60, {"team": 30}, "team") == BuildLimit(
        30, "QUEUE_TTL.NAMESPACES.team")
    assert configured_limit("QUEUE_TTL", 60, {"team": 30}, "ops") == BuildLimit(
        60, "QUEUE_TTL.DEFAULT")
    assert configured_limit("QUEUE_TTL", None, {}, "ops") is None


def test_messages_name_the_limit_and_who_set_it() -> None:
    assert timed_out_message(BuildLimit(1200, "submission")) == (
        "the build ran past its timeout of 20m (set at submission); it was stopped")
    assert timed_out_message(BuildLimit(7200, "MACHINE_MAX_TIME")) == (
        "the build ran past its timeout of 2h (set by MACHINE_MAX_TIME); it was stopped")
    assert queue_expired_message(BuildLimit(3600, "QUEUE_TTL.DEFAULT")) == (
        "the build waited 1h in the queue (QUEUE_TTL.DEFAULT) without starting; submit it "
        "again or raise QUEUE_TTL.DEFAULT")


def test_a_limit_kept_in_options_reads_back() -> None:
    limit = BuildLimit(600, "QUEUE_TTL.NAMESPACES.team")
    assert BuildLimit.from_option(limit.as_option()) == limit
    assert BuildLimit.from_option({"seconds": "600"}) is None
    assert BuildLimit.from_option(None) is None
