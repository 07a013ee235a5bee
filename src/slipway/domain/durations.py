"""Durations as users write them: `90`, `90s`, `20m`, `1h30m` (or a number of seconds),
shown back the same way (`1200` -> `20m`). One rule for the API, the CLI and the
configuration, so a value accepted in one place is accepted everywhere."""

from __future__ import annotations

import re

# a bare number is seconds; after h or m a number needs its unit ("1h30" is ambiguous)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$|^(\d+)$")
EXAMPLES = "90s, 20m or 1h30m (or a number of seconds)"


class InvalidDuration(ValueError):
    """The value is not a duration; the text says what to write instead."""


def parse_duration(value: object) -> int:
    """Whole seconds, at least 1, of an int or a text such as `20m`."""
    if isinstance(value, bool):  # a YAML `yes` is not a duration
        raise InvalidDuration(f"{value!r} is not a duration; write {EXAMPLES}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str):
        match = _DURATION.match(value.strip().lower())
        if not value.strip() or match is None:
            raise InvalidDuration(f"{value!r} is not a duration; write {EXAMPLES}")
        hours, minutes, secs, bare = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs + bare
    else:
        raise InvalidDuration(f"{value!r} is not a duration; write {EXAMPLES}")
    if seconds < 1:
        raise InvalidDuration(f"{value!r} is no time at all; write at least 1s, e.g. {EXAMPLES}")
    return seconds


def format_duration(seconds: float) -> str:
    """`1200` -> `20m`, `5400` -> `1h30m`, `90` -> `1m30s`."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (
        f"{secs}s" if secs else "")
    return text or "0s"
