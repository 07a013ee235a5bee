"""Scheduled rebuilds: a trigger's five-field cron expression (UTC) and its next run."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import CroniterBadCronError, croniter


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(
            f"schedule.cron: {expression!r} is not a five-field cron expression (minute "
            "hour day-of-month month day-of-week, UTC), e.g. '0 4 * * 1' for Mondays 04:00")
    return expression


def next_run(expression: str, after: float) -> float:
    """The first time strictly after `after` (UNIX seconds) the expression matches."""
    try:
        itr = croniter(expression, datetime.fromtimestamp(after, UTC))
    except CroniterBadCronError as exc:  # checked at create; a stored one still parses
        raise ValueError(str(exc)) from None
    return float(itr.get_next(float))
