"""A worker call that meets a database or orchestrator outage ends UNAVAILABLE, with a
retry hint, never UNKNOWN: the worker retries UNAVAILABLE within its retry window
(worker/retry.py), so a restart of PostgreSQL or Redis costs no build."""

from __future__ import annotations

from dataclasses import dataclass

from slipway.orchestrator.base import OrchestratorError
from slipway.store.errors import StoreUnavailable

# trailing metadata of an UNAVAILABLE answer: seconds the worker should wait at least
RETRY_HINT_KEY = "retry-after-s"
# the orchestrator's own reconnects are quick; a worker may try again soon
ORCHESTRATOR_RETRY_S = 2

OUTAGES: tuple[type[Exception], ...] = (StoreUnavailable, OrchestratorError)


@dataclass(frozen=True)
class Outage:
    message: str
    retry_after: int

    @property
    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((RETRY_HINT_KEY, str(self.retry_after)),)


def outage_of(exc: BaseException) -> Outage | None:
    """The outage `exc` reports, or None when it is not one. Both messages come masked
    (store/errors.py, orchestrator/redis_client.py)."""
    if isinstance(exc, StoreUnavailable):
        return Outage(exc.message, exc.retry_after)
    if isinstance(exc, OrchestratorError):
        return Outage(f"the orchestrator is not answering ({exc}); retry in "
                      f"{ORCHESTRATOR_RETRY_S} s", ORCHESTRATOR_RETRY_S)
    return None
