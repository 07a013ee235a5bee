"""Which timeout and queue TTL apply to a build (domain/build_limits.py): set at
submission, else by BUILD_TIMEOUTS / QUEUE_TTL for its namespace; the timeout never past
MACHINE_MAX_TIME. The admission writes them into the build's options; an attempt's
registration reads the timeout back for its deadline key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.config.build_limits import BuildLimitsConfig
from slipway.domain.build_limits import MACHINE_MAX_TIME, BuildLimit, configured_limit
from slipway.domain.durations import format_duration
from slipway.domain.refusals import Refusal, Refused

TIMEOUT_OPTION = "timeout"
QUEUE_TTL_OPTION = "queue_ttl"


def submitted_limit(options: Mapping[str, Any], name: str) -> BuildLimit | None:
    """The limit `name` given with the build itself (not one the configuration set)."""
    limit = BuildLimit.from_option(options.get(name))
    return limit if limit is not None and limit.submitted else None


def _configured(config: BuildLimitsConfig, key: str, namespace: str) -> BuildLimit | None:
    return configured_limit(key, config.DEFAULT, config.NAMESPACES, namespace)


def check_timeout(limit: BuildLimit, machine_max_time: int | None) -> None:
    """A timeout asked for above MACHINE_MAX_TIME is refused rather than cut: the user
    asked for more than this server gives, and should know before the build waits."""
    if machine_max_time is not None and limit.seconds > machine_max_time:
        longest = format_duration(machine_max_time)
        raise Refused(
            Refusal.INVALID,
            f"timeout: {limit.shown} is longer than this server lets a build run "
            f"(MACHINE_MAX_TIME, {longest}); ask for {longest} or less",
        )


def limits_for_submission(
    options: Mapping[str, Any],
    namespace: str,
    *,
    timeouts: BuildLimitsConfig,
    queue_ttls: BuildLimitsConfig,
    machine_max_time: int | None,
) -> dict[str, Any]:
    """`options` with the build's timeout and queue TTL as they apply now: the ones given
    with it, else the configured ones (a rebuild's configured ones are read anew)."""
    result = {k: v for k, v in options.items() if k not in (TIMEOUT_OPTION, QUEUE_TTL_OPTION)}
    timeout = submitted_limit(options, TIMEOUT_OPTION)
    if timeout is not None:
        check_timeout(timeout, machine_max_time)
    else:
        timeout = _configured(timeouts, "BUILD_TIMEOUTS", namespace)
    ttl = submitted_limit(options, QUEUE_TTL_OPTION) or _configured(
        queue_ttls, "QUEUE_TTL", namespace)
    if timeout is not None:
        result[TIMEOUT_OPTION] = timeout.as_option()
    if ttl is not None:
        result[QUEUE_TTL_OPTION] = ttl.as_option()
    return result


def attempt_timeout(
    options: Mapping[str, Any] | None,
    namespace: str,
    *,
    timeouts: BuildLimitsConfig,
    machine_max_time: int,
) -> BuildLimit:
    """The deadline of an attempt: the build's timeout (the one its options keep; for a
    build with none there, a Quay build or one queued before BUILD_TIMEOUTS, the
    configured one now), never past MACHINE_MAX_TIME, which may have been lowered since
    the build was queued."""
    limit = BuildLimit.from_option((options or {}).get(TIMEOUT_OPTION)) or _configured(
        timeouts, "BUILD_TIMEOUTS", namespace)
    if limit is None or limit.seconds > machine_max_time:
        return BuildLimit(machine_max_time, MACHINE_MAX_TIME)
    return limit


def queue_ttl_of(options: Mapping[str, Any] | None) -> BuildLimit | None:
    return BuildLimit.from_option((options or {}).get(QUEUE_TTL_OPTION))
