"""Riding out a server that goes away while the CLI follows a build (a manager restarted,
or the load balancer moved to another manager): how long to keep trying, what to say,
and the exit codes that tell a lost server from a failed build (docs/cli.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from slipway.cli.errors import CliError

# exit codes of the build commands (docs/cli.md, "Exit codes")
EXIT_FAILED = 1  # the build failed, or the command did (bad input, refused, not found)
EXIT_SERVER_LOST = 3  # the server stayed away: the build may still run; re-attach
EXIT_INTERRUPTED = 130  # Ctrl-C: the build keeps running on the server

RECONNECT_ENV = "SLIPWAY_RECONNECT_TIMEOUT"
DEFAULT_RECONNECT = "5m"  # a manager restart, or a failover to another one, fits in it
# the pace of the tries (slipway.backoff): soon after a blip, then every few seconds
FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 5.0

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str) -> float:
    """Seconds of `300`, `300s`, `5m`, `1h30m` (`0`: do not reconnect)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise CliError(f"--reconnect-timeout {text!r}: write a duration such as 90s, 5m or "
                       "1h30m (0: give up at once)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    """`5m`, `90s` -> `1m30s`, `1h`: how the messages state the reconnect window."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (
        f"{secs}s" if secs else "")
    return text or "0s"


@dataclass(frozen=True)
class Reconnect:
    """How long to keep trying a server that went away, and where to say so (one line
    when it goes, one when it is back)."""

    patience: float
    notify: Callable[[str], None]


class ServerLost(CliError):
    """The server stayed unreachable for the whole reconnect window."""

    def __init__(self, server: str, patience: float, reason: str) -> None:
        self.server = server
        self.patience = patience
        self.reason = reason
        super().__init__(f"lost the server at {server}: no answer for "
                         f"{format_duration(patience)} ({reason})")
