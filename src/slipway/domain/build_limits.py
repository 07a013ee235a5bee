"""A build's own time limits, and what a user reads when one ends it.

Two limits, each set at submission (the API's `timeout` and `queue_ttl`), else by the
configuration (the namespace's value, else DEFAULT), else, for the timeout only, by the
executor's MACHINE_MAX_TIME:

- the timeout: how long an attempt may run once its worker registered. It is the
  attempt's deadline key (manager/jobs.py), the same key MACHINE_MAX_TIME set alone
  before; a build past it ends `internalerror`, not retried (results.py TIMED_OUT);
- the queue TTL: how long a build may wait in the queue before its first attempt starts.
  A build still waiting then ends `internalerror` with no tries left, which the API shows
  as Quay's `expired` (api/serialize.py).

A limit is kept in the build record's `options` as `{"seconds": N, "set_by": WHO}`, so the
API shows what applies to the build and the message names where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slipway.domain.durations import format_duration

# `set_by` of a limit given with the build (API field, `slipway build --timeout`)
SUBMITTED = "submission"
MACHINE_MAX_TIME = "MACHINE_MAX_TIME"


@dataclass(frozen=True)
class BuildLimit:
    seconds: int
    # SUBMITTED, or the config key that set it: "BUILD_TIMEOUTS.NAMESPACES.team",
    # "BUILD_TIMEOUTS.DEFAULT", "MACHINE_MAX_TIME", "QUEUE_TTL.DEFAULT", ...
    set_by: str

    @property
    def submitted(self) -> bool:
        return self.set_by == SUBMITTED

    def as_option(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "set_by": self.set_by}

    @classmethod
    def from_option(cls, value: object) -> BuildLimit | None:
        """The limit kept in a record's options; None when there is none (or it is not
        one: a record written by something else)."""
        if not isinstance(value, Mapping):
            return None
        seconds, set_by = value.get("seconds"), value.get("set_by")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
            return None
        return cls(seconds, str(set_by or SUBMITTED))

    @property
    def shown(self) -> str:
        return format_duration(self.seconds)


def configured_limit(
    key: str, default: int | None, namespaces: Mapping[str, int], namespace: str
) -> BuildLimit | None:
    """A config key's value for `namespace` (its own, else DEFAULT), or None."""
    if namespace in namespaces:
        return BuildLimit(namespaces[namespace], f"{key}.NAMESPACES.{namespace}")
    if default is not None:
        return BuildLimit(default, f"{key}.DEFAULT")
    return None


def _source(limit: BuildLimit) -> str:
    return "set at submission" if limit.submitted else f"set by {limit.set_by}"


def timed_out_message(limit: BuildLimit) -> str:
    """The error of a build stopped at its timeout."""
    return f"the build ran past its timeout of {limit.shown} ({_source(limit)}); it was stopped"


def queue_expired_message(limit: BuildLimit) -> str:
    """The error of a build that waited past its queue TTL without starting."""
    if limit.submitted:
        where, fix = "its queue_ttl, set at submission", "with a longer queue_ttl"
    else:
        where, fix = limit.set_by, f"or raise {limit.set_by}"
    return (f"the build waited {limit.shown} in the queue ({where}) without starting; "
            f"submit it again {fix}")
