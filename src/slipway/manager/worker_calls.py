"""What the manager does for each worker call, independent of gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from slipway import metrics
from slipway.backoff import Backoff
from slipway.domain.phases import PROTOCOL_PHASES, Phase
from slipway.domain.refusals import CallRefused
from slipway.manager.build_pack import (
    BuildPack,
    BuildPackUnavailable,
    PackParts,
    assemble_build_pack,
)
from slipway.manager.cached_tag import first_existing_tag
from slipway.manager.context import ManagerContext
from slipway.manager.current_attempt import (
    REPORTED_BY,
    AttemptEnded,
    heard_from,
    known_end,
    refused,
    running_job,
)
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.keys import REGISTERED_PREFIX, job_key
from slipway.manager.log_lines import BadLogLine, parse_log_line
from slipway.signing.keyring import SigningUnavailable, pack_signing
from slipway.store.records import LogEntry
from slipway.tokens.jwt import InvalidToken, TokenClaims, TokenType

log = logging.getLogger("slipway.manager")

# longest a registration waits for the manager to finish recording the worker's start
REGISTER_WAIT = 10.0
REGISTER_POLL_FIRST = 0.05
REGISTER_POLL_MAX = 1.0


async def _claims(ctx: ManagerContext, token: str, kind: TokenType) -> TokenClaims:
    try:
        return await ctx.tokens.verify(token, kind)
    except InvalidToken as exc:
        raise CallRefused("UNAUTHENTICATED", str(exc)) from exc


async def register(ctx: ManagerContext, packs: PackParts, token: str) -> BuildPack:
    """Spend the registration token, mark the job running and hand back the worker's
    BuildPack (`packs`: the backend's part of it)."""
    claims = await _claims(ctx, token, TokenType.REGISTRATION)
    ctx.tracing.registering(claims.build_id, claims.job_id)
    with ctx.tracing.span(claims.build_id, "registration"):
        return await _spend_and_register(ctx, packs, token, claims)


async def _spend_and_register(ctx: ManagerContext, packs: PackParts, token: str,
                              claims: TokenClaims) -> BuildPack:
    lifetime = max(1.0, claims.expiration - time.time()) + 60
    spent = f"{REGISTERED_PREFIX}{claims.jti}"
    if not await ctx.orchestrator.set(spent, claims.job_id, overwrite=False, expiration=lifetime):
        raise CallRefused("UNAUTHENTICATED", "registration token was already used")
    try:
        pack = await _register(ctx, packs, claims)
    except CallRefused:
        raise
    except Exception:
        # an outage (not a refusal) stopped us before the job became RUNNING: un-spend the
        # token so the worker's retry can register
        with contextlib.suppress(Exception):
            raw = await ctx.orchestrator.get(job_key(claims.job_id))
            if raw is None or JobState.loads(raw).stage is not JobStage.RUNNING:
                await ctx.orchestrator.delete(spent)
        raise
    ctx.tokens.forget(token)  # spent: it is never accepted again
    return pack


async def _scheduled_job(ctx: ManagerContext, claims: TokenClaims) -> JobState:
    """The job, once its manager has recorded the worker: a fast worker may call before
    the executor's start_worker has even returned (stage still `scheduling`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REGISTER_WAIT
    pauses = Backoff(REGISTER_POLL_FIRST, REGISTER_POLL_MAX)
    while True:
        found = await ctx.attempts.current_job(claims.job_id)  # (put back if Redis lost it)
        if found is None:
            raise CallRefused("FAILED_PRECONDITION", "this build job has ended or expired")
        job = found
        remaining = deadline - loop.time()
        if job.stage is not JobStage.SCHEDULING or remaining <= 0:
            return job
        # started by this process: woken the moment it is recorded. By another manager:
        # polled, backing off, so a burst of early registrations cannot flood the
        # orchestrator with reads
        marked = ctx.attempts.scheduled_signal(claims.job_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(pauses.next(), remaining)):
                await marked.wait()


async def _register(ctx: ManagerContext, packs: PackParts, claims: TokenClaims
                    ) -> BuildPack:
    # the record its attempt began from, when this process began it; its phase then is
    # not the build's now, but a build that ended since has no job key left to mark
    # running below, and a cancelled one is known from its cancel event
    record = ctx.attempts.take_begun_record(claims.job_id)
    if record is None or ctx.attempts.is_cancelled(claims.build_id):
        record = await ctx.build(claims.build_id)
    if record is None or record.phase.is_final:
        raise CallRefused("FAILED_PRECONDITION", "this build has ended")
    max_time = float(ctx.manager_config.MACHINE_MAX_TIME)
    package_url = packs.package_url(record)  # may raise: before the job is marked running
    # The pack is put together before the job is marked running: its reads (credentials,
    # secrets) may meet a database outage, and a registration that fails before the mark
    # gives its token back for the worker's retry; after it, the retry would be refused
    # and the attempt lost with a live worker
    job_token = ctx.tokens.mint(TokenType.JOB, claims.build_id, claims.job_id, max_time)
    try:
        signing = pack_signing(ctx.app_config, record.id, record.namespace, record.options or {})
        pack = await assemble_build_pack(packs, record, job_token=job_token,
                                         package_url=package_url, signing=signing)
    except SigningUnavailable as exc:  # checked at start: a key file changed since
        log.error("build %s: %s", record.id, exc)
        raise CallRefused("FAILED_PRECONDITION", str(exc)) from exc
    except BuildPackUnavailable as exc:
        log.error("build %s: %s", record.id, exc)
        raise CallRefused("FAILED_PRECONDITION", str(exc)) from exc
    # The manager that started the worker knows the job key's value: it wrote it. Marking
    # it running from that copy saves a read per registration, on the path every build
    # takes; if the key changed meanwhile, it is read.
    attempts = ctx.attempts
    job = attempts.job(claims.job_id)
    if job is None or job.stage is not JobStage.SCHEDULED or not await attempts.running(
        job, record
    ):
        job = await _scheduled_job(ctx, claims)
        if job.stage is not JobStage.SCHEDULED:
            raise CallRefused("FAILED_PRECONDITION", f"this build job is {job.stage.value}")
        if not await attempts.running(job, record):
            raise CallRefused("FAILED_PRECONDITION",
                              "this build job changed while registering")
    return pack


async def heartbeat(ctx: ManagerContext, token: str) -> bool:
    """False (the worker stops) when the attempt has ended: the protocol's answer to a
    heartbeat of a gone job, which quay-builder understands too."""
    try:
        claims = await ctx.tokens.verify(token, TokenType.JOB)
    except InvalidToken:
        return False
    known = known_end(ctx.attempts, claims)
    if known is not None:
        refused("Heartbeat", claims, known)
        return False
    if not await ctx.attempts.heartbeat(claims.build_id, claims.job_id):
        refused("Heartbeat", claims, AttemptEnded())
        return False
    return True


async def set_phase(
    ctx: ManagerContext,
    token: str,
    sequence_number: int,
    phase_number: int,
    pull_metadata: dict[str, str],
    image_digest: str = "",
    error_message: str = "",
    attestations: str = "",
    worker_spans: bytes = b"",
) -> bool:
    """`attestations`: what the worker signed and attached, sent with COMPLETE
    (docs/signing.md); `worker_spans`: the worker's finished spans, sent with COMPLETE or
    ERROR (tracing/wire.py)."""
    claims = await _claims(ctx, token, TokenType.JOB)
    new = PROTOCOL_PHASES.get(phase_number)
    try:
        job = await running_job(ctx, claims, "SetPhase")
    except AttemptEnded as ended:
        if new is not None and new in REPORTED_BY and ended.outcome is REPORTED_BY[new]:
            # the worker's retry of the report that ended it (the answer to its first
            # try was lost): as any repeated number, success=false, "it landed"
            return False
        raise
    if new is None or new is Phase.WAITING or job.stage is not JobStage.RUNNING:
        log.debug("SetPhase %s of job %s refused: phase or stage %s", phase_number,
                  claims.job_id, job.stage.value)
        return False
    if sequence_number <= job.phase_seq:
        log.debug("SetPhase of job %s refused: sequence %d <= %d", claims.job_id,
                  sequence_number, job.phase_seq)
        return False
    if new not in (Phase.COMPLETE, Phase.ERROR):
        return await ctx.attempts.phase_reported(
            job, sequence_number, new, pull_metadata=pull_metadata,
            image_digest=image_digest, error_message=error_message,
        )
    if worker_spans:
        ctx.tracing.take_worker_spans(claims.build_id, worker_spans)
    ctx.tracing.completing(claims.build_id)  # the span ends where the build's end is kept
    if new is Phase.COMPLETE and attestations:
        # before the end: once the build shows complete, its attestations are there
        await keep_attestations(ctx, claims.build_id, attestations)
    return await ctx.attempts.phase_reported(
        job, sequence_number, new, pull_metadata=pull_metadata,
        image_digest=image_digest, error_message=error_message,
    )


async def keep_attestations(ctx: ManagerContext, build_id: str, text: str) -> None:
    """Store what the worker signed and attached (docs/signing.md); a document that is
    not a JSON object is logged and dropped (the image is pushed and signed all the
    same: the registry holds them)."""
    store = ctx.store.attestations
    if store is None:
        return
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        log.warning("build %s: its worker's attestations are not a JSON object; dropped",
                    build_id)
        return
    await store.put(build_id, document)


@dataclass
class LogResult:
    success: bool
    sequence_number: int


class LogStreamState:
    """When each job of this stream was last found running (its key touched): at most
    once a second per job, between those what this process knows of ends decides."""

    def __init__(self) -> None:
        self.touched: dict[str, float] = {}


async def ingest_logs(
    ctx: ManagerContext,
    state: LogStreamState,
    requests: Sequence[tuple[str, int, str, str]],
) -> list[LogResult]:
    """Store a batch of (job_jwt, sequence_number, log_message, phase) in one transaction
    per build, in order, and say which were accepted. Acknowledged lines are durable.
    Raises AttemptEnded, nothing of the batch stored, when a line's attempt has ended."""
    verified: list[TokenClaims | None] = []
    for token, *_ in requests:
        try:
            verified.append(await ctx.tokens.verify(token, TokenType.JOB))
        except InvalidToken:
            verified.append(None)
    # before anything is stored: an ended attempt's lines are refused whole
    for job_claims in {c.job_id: c for c in verified if c is not None}.values():
        await _still_running(ctx, state, job_claims)
    results: list[LogResult] = []
    by_build: dict[str, list[LogEntry]] = {}
    accepted_builds: dict[int, str] = {}  # request index -> build id
    sequences = ctx.log_sequences
    last_taken: dict[str, int] = {}  # job id -> its last number in this batch
    for claims, (_, seq, message, phase) in zip(verified, requests, strict=True):
        if claims is None or seq <= last_taken.get(claims.job_id,
                                                   sequences.last(claims.job_id)):
            results.append(LogResult(False, seq))
            continue
        try:
            entries = parse_log_line(message, phase)
        except BadLogLine:
            results.append(LogResult(False, seq))
            continue
        last_taken[claims.job_id] = seq
        by_build.setdefault(claims.build_id, []).extend(entries)
        accepted_builds[len(results)] = claims.build_id
        results.append(LogResult(True, seq))
    if not by_build:
        return results
    # taken before the write: a second stream of the job (the old one, not yet torn
    # down, and the worker's new one re-sending) cannot store the same lines meanwhile
    previous = {job_id: sequences.last(job_id) for job_id in last_taken}
    for job_id, seq in last_taken.items():
        sequences.take(job_id, seq)
    try:
        refused_builds = await ctx.log_writer.append(by_build)
    except BaseException:
        # not stored: the worker's re-send must be
        for job_id, seq in last_taken.items():
            sequences.give_back(job_id, seq, previous[job_id])
        raise
    if refused_builds:  # the build is gone: its lines were not stored
        for index, request in enumerate(requests):
            if results[index].success and accepted_builds[index] in refused_builds:
                results[index] = LogResult(False, request[1])
    metrics.LOG_LINES.inc(sum(len(entries) for build_id, entries in by_build.items()
                              if build_id not in refused_builds))
    return results


async def _still_running(ctx: ManagerContext, state: LogStreamState,
                         claims: TokenClaims) -> None:
    """Refuse the lines of an ended attempt. Every accepted log line counts as a
    heartbeat: the job key is touched, at most once a second per job, and the touch
    says whether it is still there; in between, what this process knows decides."""
    now = time.monotonic()
    if now - state.touched.get(claims.job_id, float("-inf")) < 1.0:
        known = known_end(ctx.attempts, claims)
        if known is not None:
            raise refused("LogMessage", claims, known)
        return
    await heard_from(ctx, claims, "LogMessage")
    state.touched[claims.job_id] = now


async def cached_tag(ctx: ManagerContext, token: str) -> str:
    claims = await _claims(ctx, token, TokenType.JOB)
    await running_job(ctx, claims, "DetermineCachedTag")  # refuses an ended attempt's
    record = await ctx.store.builds.get(claims.build_id)
    if record is None:
        return ""
    return await first_existing_tag(ctx.app_config, record)
