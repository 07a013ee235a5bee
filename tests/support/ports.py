"""Free 127.0.0.1 TCP ports for the servers the tests start.

A port found free is handed to a server that binds it a moment later; meanwhile another
process may take it. The two pytest processes of scripts/run-tests.sh would do that to
each other (seen: `slipway serve` refused its API port, "already in use"), so each gets
its own range in SLIPWAY_TEST_PORTS (LOW-HIGH), below the kernel's ephemeral ports, which
the servers binding port 0 and every outgoing connection use. Without it: the kernel's
choice."""

from __future__ import annotations

import os
import random
import socket

_handed: set[int] = set()  # not handed out twice while the range has others


def _range() -> tuple[int, int] | None:
    spec = os.environ.get("SLIPWAY_TEST_PORTS", "").strip()
    if not spec:
        return None
    low, _, high = spec.partition("-")
    return int(low), int(high)


def bindable(port: int) -> bool:
    """Whether nothing holds `port` on 127.0.0.1."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    bounds = _range()
    if bounds is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    low, high = bounds
    if len(_handed) > (high - low) // 2:
        _handed.clear()
    for _ in range(2000):
        port = random.randint(low, high)
        if port not in _handed and bindable(port):
            _handed.add(port)
            return port
    raise RuntimeError(f"no free port in SLIPWAY_TEST_PORTS {low}-{high}")
