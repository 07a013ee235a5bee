"""The one backoff helper every retry loop paces itself with."""

from __future__ import annotations

from slipway.backoff import Backoff


def test_pauses_double_up_to_the_cap_and_start_over_after_a_reset() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.2


def test_a_first_pause_over_the_cap_is_the_cap() -> None:
    assert Backoff(60.0, 30.0).next() == 30.0
