"""How the access commands show times and scopes (cli/token_cmd.py, cli/audit_cmd.py)."""

from __future__ import annotations

import datetime as dt
import re

from slipway.cli.errors import CliError
from slipway.domain.durations import InvalidDuration, parse_duration

_DAYS = re.compile(r"^(\d+)d$")


def when(value: float | None, never: str = "-") -> str:
    """A UNIX time as `2026-12-06 21:04` (UTC)."""
    if value is None:
        return never
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M")


def scopes_text(scopes: dict[str, str]) -> str:
    return ", ".join(f"{ns}={role}" for ns, role in sorted(scopes.items()))


def parse_scope(value: str) -> tuple[str, str]:
    namespace, sep, role = value.partition("=")
    if not sep or not namespace or role not in ("read", "write", "admin"):
        raise CliError(f"--scope {value!r}: write NAMESPACE=ROLE (ROLE: read, write or "
                       "admin; NAMESPACE * for every namespace), e.g. --scope team=write")
    return namespace, role


def point_in_time(value: str, option: str, now: float) -> float:
    """`2026-12-01`, `2026-12-01T10:00` (UTC unless it says), or a time ago: `2h`, `7d`."""
    text = value.strip()
    days = _DAYS.match(text)
    try:
        if days:
            return now - int(days.group(1)) * 86400
        return now - parse_duration(text)
    except InvalidDuration:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {value!r}: give a date (2026-12-01, 2026-12-01T10:00) "
                       "or a time ago (90m, 2h, 7d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
