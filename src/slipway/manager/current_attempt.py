"""Whether a worker's call belongs to an attempt still under way: the one check every
call made with a job token passes (SetPhase, Heartbeat, LogMessage, DetermineCachedTag).

A call of an attempt that was ended (its heartbeat lost, cancelled, timed out, finished,
or taken over by a later attempt, whose start removes the earlier one's job key) is
refused and changes nothing: no phase moves, no log line is stored, no result recorded.
SetPhase, LogMessage and DetermineCachedTag answer FAILED_PRECONDITION ("this build
attempt was ended (...); stop"); Heartbeat answers `reply=false`, the protocol's own
stop. The worker stops its build and cleans up (docs/protocol.md).

Cheap on the hot path: first what this process knows (the ends `Attempts` saw or heard
of, the builds a user cancelled: dictionary lookups), then the job key in the
orchestrator, read by the calls that act on the job (SetPhase, DetermineCachedTag) or
touched by those that are news of the worker (Heartbeat, log lines: the touch pushes
the key's expiry out, and says whether the key is there). A key missing because the
orchestrator lost it (Redis restarted empty) is not an end: it is put back
(`Attempts.put_back_keys`), and meanwhile the worker is told to try again. No
database read on the hot path.
"""

from __future__ import annotations

import logging

from slipway import metrics
from slipway.domain.phases import Phase
from slipway.domain.refusals import CallRefused
from slipway.domain.results import AttemptEnd
from slipway.manager.attempts import Attempts
from slipway.manager.context import ManagerContext
from slipway.manager.jobs import JobState
from slipway.tokens.jwt import TokenClaims

log = logging.getLogger("slipway.manager")


class AttemptEnded(CallRefused):
    """A call of an attempt that has ended: the worker must stop."""

    def __init__(self, outcome: AttemptEnd | None = None) -> None:
        how = f" ({outcome.value.replace('_', ' ')})" if outcome is not None else ""
        super().__init__("FAILED_PRECONDITION", f"this build attempt was ended{how}; stop")
        self.outcome = outcome


# the ends a worker reports itself, by the phase it reports: its calls while it cleans
# up (a heartbeat, a last line) are expected, not a stale worker's
REPORTED_BY = {Phase.COMPLETE: AttemptEnd.COMPLETED, Phase.ERROR: AttemptEnd.USER_ERROR}
REPORTED_ENDS = frozenset(REPORTED_BY.values())


def known_end(attempts: Attempts, claims: TokenClaims) -> AttemptEnded | None:
    """The refusal of a call whose attempt this process knows has ended; no I/O."""
    if claims.job_id in attempts.ended:
        return AttemptEnded(attempts.ended.outcome(claims.job_id))
    if attempts.is_cancelled(claims.build_id):
        return AttemptEnded(AttemptEnd.CANCELLED)
    return None


def refused(call: str, claims: TokenClaims, refusal: AttemptEnded) -> AttemptEnded:
    """Count and log a stale call's refusal; the refusal, for the caller to raise."""
    if refusal.outcome in REPORTED_ENDS:
        log.debug("%s of build %s (job %s) after its end: %s", call, claims.build_id,
                  claims.job_id, refusal)
        return refusal
    metrics.STALE_CALLS_REFUSED.labels(call).inc()
    log.info("%s of build %s (job %s) refused: %s", call, claims.build_id, claims.job_id,
             refusal)
    return refusal


async def running_job(ctx: ManagerContext, claims: TokenClaims, call: str) -> JobState:
    """The job of a call that acts on it, as its key holds it; AttemptEnded when the
    attempt has ended."""
    known = known_end(ctx.attempts, claims)
    if known is not None:
        raise refused(call, claims, known)
    # a key the orchestrator lost (Redis restarted empty) is put back first, or the
    # worker is told to try again (OrchestratorError) while its manager puts it back
    job = await ctx.attempts.running_job(claims.job_id)
    if job is None:
        raise refused(call, claims, AttemptEnded())
    return job


async def heard_from(ctx: ManagerContext, claims: TokenClaims, call: str) -> None:
    """News of the worker (its log lines): the job key's expiry pushed out; AttemptEnded
    when the attempt has ended."""
    known = known_end(ctx.attempts, claims)
    if known is not None:
        raise refused(call, claims, known)
    if not await ctx.attempts.touch_or_put_back(claims.job_id):
        raise refused(call, claims, AttemptEnded())
