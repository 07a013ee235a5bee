"""The slow-down of failed authentications (api/auth_throttle.py), on its own clock: a
client is held back once it reaches the limit within the window, told how long, and let
through again when its oldest failure leaves the window; other clients are not
affected, and the addresses remembered are bounded."""

from __future__ import annotations

import pytest

from slipway.api import auth_throttle
from slipway.api.auth_throttle import FailedAuthThrottle


def test_the_limit_the_wait_and_the_window() -> None:
    throttle = FailedAuthThrottle(limit=3, window=60)
    for at in (0.0, 10.0, 20.0):
        assert throttle.retry_after("10.0.0.1", now=at) is None
        throttle.failed("10.0.0.1", now=at)
    assert throttle.retry_after("10.0.0.1", now=20.5) == 40  # until 0 + 60
    assert throttle.retry_after("10.0.0.2", now=20.5) is None
    assert throttle.retry_after("10.0.0.1", now=59.5) == 1
    # the first failure left the window: one more try, and held again after it fails
    assert throttle.retry_after("10.0.0.1", now=60.0) is None
    throttle.failed("10.0.0.1", now=60.0)
    assert throttle.retry_after("10.0.0.1", now=60.0) == 10  # until 10 + 60
    assert throttle.retry_after("10.0.0.1", now=200.0) is None


def test_the_addresses_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_throttle, "MAX_CLIENTS", 3)
    throttle = FailedAuthThrottle(limit=1, window=60)
    for n in range(5):
        throttle.failed(f"10.0.0.{n}", now=1.0)
    held = [n for n in range(5) if throttle.retry_after(f"10.0.0.{n}", now=2.0) is not None]
    assert held == [2, 3, 4]  # the oldest were forgotten first
