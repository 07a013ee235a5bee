"""The log stream's read pace (api/sse.py): a build's last lines and its end, committed
together, are read at once; a build that commits without pause is read at a bounded
rate, however fast it writes."""

from __future__ import annotations

import pytest

from slipway.api import sse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sse.time, "monotonic", clock)
    return clock


def test_a_burst_of_changes_is_read_at_once(clock: Clock) -> None:
    pace = sse.ReadPace(rate=50.0, burst=5)
    assert [pace.next_read() for _ in range(5)] == [0.0] * 5


def test_changes_without_pause_are_read_at_the_rate(clock: Clock) -> None:
    pace = sse.ReadPace(rate=50.0, burst=5)
    for _ in range(5):
        pace.next_read()
    reads = 0
    # a writer committing every millisecond for two seconds: each read waits as asked
    until = clock.now + 2.0
    while clock.now < until:
        clock.now += max(0.001, pace.next_read())
        reads += 1
    assert 95 <= reads <= 105  # 50 a second, not 1,000


def test_a_quiet_spell_gives_the_burst_back(clock: Clock) -> None:
    pace = sse.ReadPace(rate=50.0, burst=5)
    for _ in range(20):
        clock.now += pace.next_read()
    clock.now += 1.0
    assert [pace.next_read() for _ in range(5)] == [0.0] * 5
    assert pace.next_read() == pytest.approx(0.02)
