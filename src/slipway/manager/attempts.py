"""Starting a build attempt on an executor, and ending it (docs/architecture.md, steps 2
and 5 of the flow)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from slipway import metrics
from slipway.domain.phases import FINAL_PHASES, Phase
from slipway.domain.results import (
    INITIAL_RETRIES,
    AttemptEnd,
    attempt_label,
    decide,
    failure_message,
    retry_message,
)
from slipway.executors.base import ExecutorError, WorkerSpec
from slipway.manager.context import ManagerContext
from slipway.manager.db_retry import retry_transient
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.keys import deadline_key, ended_key, job_key
from slipway.manager.phase_log import phase_entry
from slipway.manager.worker_env import worker_environment
from slipway.store.interfaces import SharedTransaction
from slipway.store.records import BuildRecord, LogEntry, QueueItem
from slipway.tokens.jwt import TokenType

log = logging.getLogger("slipway.manager")

NON_FINAL = [p for p in Phase if p not in FINAL_PHASES]
# extra queue-lease time beyond the orchestrator deadlines, so the lease (the backstop for a
# lost orchestrator) never fires before the orchestrator's own expiry would
LEASE_MARGIN = 60.0
# how long an "ended" marker outlives a job key that expired or was lost
ENDED_MARKER_TTL = 3600.0
# how long the end of an attempt keeps retrying its database write through an outage
END_RETRY_SECONDS = 120.0


def lease_margin(ctx: ManagerContext) -> float:
    """LEASE_MARGIN, shortened for short heartbeat expiries (tests, small set-ups) so a
    dead manager's claim that never reached the orchestrator is retried soon too."""
    return min(LEASE_MARGIN, max(5.0, 2 * ctx.heartbeat_expiry))


def tries_used(job: JobState) -> int:
    """The build's tries used so far, this attempt's included (refunded ones are not)."""
    return max(1, INITIAL_RETRIES - job.retries_remaining)


def label(job: JobState) -> str:
    return attempt_label(job.attempt, tries_used(job), INITIAL_RETRIES)


def closed_attempts(
    attempts: list[dict[str, Any]], job: JobState, end: AttemptEnd, now: float,
    **extra: Any,
) -> list[dict[str, Any]]:
    """The build's attempts with this one ended: its entry given `ended` and `outcome`,
    or, when its start is not recorded yet (a shared write still queued), the whole
    entry, started when it registered."""
    attempts = list(attempts)
    last = attempts[-1] if attempts else {}
    if last.get("attempt") == job.attempt and "ended" not in last:
        attempts[-1] = {**last, "ended": now, "outcome": end.value, **extra}
    elif last.get("attempt") != job.attempt and job.worker_id:
        attempts.append({
            "attempt": job.attempt, "executor": job.executor,
            "worker_id": job.worker_id, "started": job.registered_at or now,
            "ended": now, "outcome": end.value, **extra,
        })
    return attempts


def track_new_job(ctx: ManagerContext, item: QueueItem) -> JobState:
    """The attempt for a claimed item, counted against capacity from this moment."""
    job = JobState(
        job_id=str(uuid.uuid4()),
        build_id=item.build_id,
        namespace=item.namespace,
        queue_id=item.id,
        manager_id=ctx.manager_id,
        retries_remaining=item.retries_remaining,
        attempt=0,  # numbered once the build's record is read (_begin_attempt)
    )
    ctx.tracked[job.job_id] = job
    metrics.RUNNING_WORKERS.set(len(ctx.tracked))
    return job


async def start_attempt(ctx: ManagerContext, item: QueueItem, job: JobState) -> None:
    """Hand a claimed queue item to the first executor that takes it."""
    try:
        begun = await _begin_attempt(ctx, item, job)
    except Exception:
        # Redis or PostgreSQL unreachable before anything started: hand the item back
        # (attempt refunded) rather than let it sit out its lease
        log.exception("could not start an attempt of build %s; it goes back to the queue",
                      item.build_id)
        await _give_back(ctx, item, job)
        return
    if begun is None:
        return
    record, attempts = begun
    ctx.records_to_register[job.job_id] = record
    previous_job = record.job_id
    if previous_job and previous_job != job.job_id:
        # the lease of an earlier attempt ran out (its manager died): make sure it is gone
        try:
            await _stop_stale_job(ctx, previous_job)
        except Exception:
            log.warning("could not check the earlier attempt %s of build %s",
                        previous_job, item.build_id)

    errors: list[str] = []
    for executor in ctx.executors:
        if not executor.allows(item.namespace, item.retries_remaining):
            metrics.EXECUTOR_FALLBACKS.labels(executor.name, "not_allowed").inc()
            continue
        token = ctx.tokens.mint(
            TokenType.REGISTRATION, item.build_id, job.job_id, executor.setup_time + 30
        )
        spec = WorkerSpec(
            build_id=item.build_id,
            job_id=job.job_id,
            namespace=item.namespace,
            registration_token=token,
            manager_address=ctx.app_config.buildman_address,
            environment=worker_environment(
                ctx.app_config, executor.config, token=token, build_id=item.build_id
            ),
            manager_id=ctx.manager_id,
        )
        try:
            worker_id = await executor.start_worker(spec)
        except Exception as exc:  # an executor that raises is skipped for the next
            reason = str(exc) if isinstance(exc, ExecutorError) else repr(exc)
            log.warning("executor %s could not start a worker: %s", executor.name, reason)
            metrics.EXECUTOR_FALLBACKS.labels(executor.name, "start_failed").inc()
            errors.append(f"{executor.name}: {reason}")
            continue
        metrics.BUILDS_SCHEDULED.labels(executor.name).inc()
        if job.attempt == 1:
            metrics.SCHEDULE_LATENCY.observe(max(0.0, time.time() - record.started))
        try:
            await _mark_scheduled(ctx, job, attempts, executor.name, worker_id,
                                  executor.setup_time)
        except Exception:
            # the worker runs; if the job key expires meanwhile the expiry handler (or the
            # reconciler) ends the attempt and stops it
            log.exception("could not record the worker of build %s", item.build_id)
        return
    detail = "; ".join(errors) or (
        "no configured executor accepts this build "
        "(MINIMUM_RETRY_THRESHOLD, NAMESPACE_WHITELIST or STAGED_ROLLOUT)"
    )
    await end_attempt(ctx, job, AttemptEnd.EXECUTOR_FAILED, detail=detail)


async def _begin_attempt(
    ctx: ManagerContext, item: QueueItem, job: JobState
) -> tuple[BuildRecord, list[dict[str, Any]]] | None:
    """Create the job key and move the build to build-scheduled. Returns the record as it
    was before (with the previous attempt's job id) and the attempts now recorded, or
    None when there is nothing to start (cancelled meanwhile)."""
    store = ctx.store
    record = await ctx.build(item.build_id)
    if record is None or record.phase.is_final:
        # cancelled between the claim and now
        async with store.write() as conn:
            await store.queue.complete(conn, item.id)
        untrack(ctx, job.job_id)
        return None
    extra: dict[str, Any] = {}
    attempts = list(record.attempts)
    entries = [phase_entry(Phase.BUILD_SCHEDULED)]
    last = record.attempts[-1] if record.attempts else {}
    if last and "ended" not in last:
        # the queue lease of an earlier attempt ran out with no end recorded: its manager
        # died (and its job key was lost too, or its expiry was never handled). Every
        # other end, a shutdown's included, records itself before the item is free again
        attempts[-1] = {**last, "ended": time.time(), "outcome": AttemptEnd.MANAGER_LOST.value}
        extra["attempts"] = attempts
        entries.insert(0, LogEntry(
            f"Attempt {last.get('attempt', '?')} was lost with the build manager running "
            "it; trying again", "error", {}))
    # every attempt the build had is in its history, so each gets the next number
    job.attempt = len(attempts) + 1
    await ctx.orchestrator.set(
        job_key(job.job_id),
        job.dumps(),
        overwrite=False,
        expiration=float(ctx.manager_config.JOB_REGISTRATION_TIMEOUT),
    )
    moved = await ctx.shared_writes.run(lambda conn: store.builds.set_phase_if(
        conn,
        item.build_id,
        NON_FINAL,
        Phase.BUILD_SCHEDULED,
        log=entries,
        job_id=job.job_id,
        retries_remaining=item.retries_remaining,
        **extra,
    ))
    if not moved:
        await ctx.orchestrator.delete(job_key(job.job_id))
        untrack(ctx, job.job_id)
        return None
    return record, attempts


async def _give_back(ctx: ManagerContext, item: QueueItem, job: JobState) -> None:
    async def give_back() -> None:
        async with ctx.store.write() as conn:
            await ctx.store.queue.incomplete(
                conn, item.id, restore_retry=True,
                retry_after=float(ctx.manager_config.RETRY_AFTER),
            )

    try:
        await ctx.orchestrator.delete(job_key(job.job_id))
        await retry_transient(give_back, f"giving build {item.build_id} back",
                              give_up_after=END_RETRY_SECONDS)
    except Exception:
        log.warning("could not give build %s back either; its queue lease expires instead",
                    item.build_id)
    untrack(ctx, job.job_id)


async def _mark_scheduled(
    ctx: ManagerContext,
    job: JobState,
    attempts: list[dict[str, Any]],
    executor: str,
    worker_id: str,
    setup_time: int,
) -> None:
    """Record the started worker: in the job key (registration waits for it), then in the
    build's attempts. It is appended to `attempts`, those _begin_attempt wrote, without
    reading them again: only this attempt writes them now, and its end changes them only
    once this entry is there."""
    scheduling = job.dumps()
    job.stage = JobStage.SCHEDULED
    job.executor = executor
    job.worker_id = worker_id
    swapped = await ctx.orchestrator.compare_and_set(
        job_key(job.job_id), scheduling, job.dumps(), expiration=float(setup_time)
    )
    ctx.mark_scheduled(job.job_id)  # a registration waiting for this re-reads the key
    if not swapped:
        # the job ended (cancelled, or JOB_REGISTRATION_TIMEOUT passed) while we were
        # starting the worker: the worker must not outlive it
        await stop_worker_of(ctx, executor, worker_id)
        return
    started = {"attempt": job.attempt, "executor": executor, "worker_id": worker_id,
               "started": time.time()}
    entry = LogEntry(f"{label(job)}: worker started on executor {executor}", None, {})

    async def record_start(conn: SharedTransaction) -> None:
        conn.extend_lease(job.queue_id, setup_time + lease_margin(ctx))
        # nothing changes once the attempt has ended (or been retried) meanwhile: a fast
        # worker can finish before this shared write commits, and its end then records
        # the attempt whole (end_attempt)
        await ctx.store.builds.update_if_job(
            conn, job.build_id, job.job_id, executor=executor,
            attempts=[*attempts, started], log=[entry], phases=NON_FINAL,
        )

    await retry_transient(lambda: ctx.shared_writes.run(record_start),
                          f"recording the worker of build {job.build_id}",
                          give_up_after=END_RETRY_SECONDS)


async def end_attempt(
    ctx: ManagerContext,
    job: JobState,
    end: AttemptEnd,
    *,
    detail: str = "",
    image_digest: str | None = None,
    key_already_gone: bool = False,
) -> bool:
    """End the attempt exactly once (whoever deletes the job key wins); stop its worker,
    remove its keys, and retry or finish the build. False when it had already ended."""
    if key_already_gone:
        # no delete to decide who ends it: a marker key does (an EXPIRE delivered twice,
        # or the reconciler and the expiry handler both seeing the key gone)
        if not await ctx.orchestrator.set(
            ended_key(job.job_id), ctx.manager_id, overwrite=False, expiration=ENDED_MARKER_TTL
        ):
            untrack(ctx, job.job_id)
            return False
    elif not await ctx.orchestrator.delete(job_key(job.job_id)):
        untrack(ctx, job.job_id)
        return False
    ctx.ending.add(job.job_id)
    try:
        await ctx.orchestrator.delete(deadline_key(job.job_id))
    except Exception:  # it expires later and finds the job gone; nothing else to do
        log.warning("could not remove the deadline key of job %s", job.job_id)
    if job.executor and job.worker_id:
        reported = end in (AttemptEnd.COMPLETED, AttemptEnd.USER_ERROR)
        ctx.spawn(stop_worker_of(ctx, job.executor, job.worker_id, reported=reported),
                  "stopping a worker")
    action = decide(end, job.retries_remaining)
    store = ctx.store
    now = time.time()

    async def record_end() -> None:
        async with store.write() as conn:
            record = await store.builds.get(job.build_id, conn)
            attempts = closed_attempts(record.attempts if record else [], job, end, now)
            if record is None or record.job_id not in (None, job.job_id):
                pass  # a newer attempt owns the build now
            elif record.phase.is_final:
                # cancelled by a user: only the queue item is left to finish
                await store.queue.complete(conn, job.queue_id)
                await store.builds.update(conn, job.build_id, attempts=attempts)
            elif action.retry:
                await store.queue.incomplete(
                    conn, job.queue_id, retry_after=float(ctx.manager_config.RETRY_AFTER)
                )
                message = retry_message(end, label(job), detail)
                await store.builds.set_phase_if(
                    conn, job.build_id, NON_FINAL, Phase.WAITING, job_id=None,
                    attempts=attempts,
                    log=[LogEntry(message, "error", {}), phase_entry(Phase.WAITING)],
                )
                metrics.BUILD_RETRIES.labels(end.value).inc()
            else:
                final = action.final_phase or Phase.INTERNAL_ERROR
                error = None
                entries: list[LogEntry] = []
                if final is Phase.INTERNAL_ERROR:
                    error = failure_message(end, tries_used(job), detail)
                elif final is Phase.ERROR:
                    error = detail or "the build failed"
                if error and final is not Phase.ERROR:
                    entries.append(LogEntry(error, "error", {}))
                entries.append(phase_entry(final))
                await store.queue.complete(conn, job.queue_id)
                if await store.builds.set_phase_if(
                    conn,
                    job.build_id,
                    NON_FINAL,
                    final,
                    log=entries,
                    completed=now,
                    error=error,
                    image_digest=image_digest,
                    attempts=attempts,
                ):
                    metrics.BUILDS_FINISHED.labels(final.value).inc()

    try:
        await retry_transient(
            record_end, f"ending attempt {job.attempt} of build {job.build_id}",
            give_up_after=END_RETRY_SECONDS,
        )
    finally:
        ctx.ending.discard(job.job_id)
    untrack(ctx, job.job_id)
    return True


def untrack(ctx: ManagerContext, job_id: str) -> None:
    ctx.tracked.pop(job_id, None)
    ctx.records_to_register.pop(job_id, None)
    ctx.mark_scheduled(job_id)  # wakes a waiting registration, which finds the job gone
    metrics.RUNNING_WORKERS.set(len(ctx.tracked))
    # always wake: the DELETE event of this job may have untracked it already, while our
    # queue update was not yet committed, and that earlier wake-up found nothing to claim
    ctx.wake_scheduler()


async def stop_worker_of(
    ctx: ManagerContext, executor_name: str, worker_id: str, *, reported: bool = False
) -> None:
    """Stop a worker; one that `reported` its build's end may first leave by itself."""
    executor = ctx.executor(executor_name)
    if executor is None:
        log.warning("cannot stop worker %s: no executor named %s here", worker_id, executor_name)
        return
    if executor.config.DEBUG:
        log.info("DEBUG is set on %s: keeping worker %s", executor_name, worker_id)
        return
    try:
        if reported:
            await executor.release_worker(worker_id)
        else:
            await executor.stop_worker(worker_id)
    except Exception:
        log.exception("executor %s failed to stop worker %s", executor_name, worker_id)


async def _stop_stale_job(ctx: ManagerContext, job_id: str) -> None:
    raw: Any = await ctx.orchestrator.get(job_key(job_id))
    if raw is None:
        return
    stale = JobState.loads(raw)
    if await ctx.orchestrator.delete(job_key(job_id)):
        await ctx.orchestrator.delete(deadline_key(job_id))
        if stale.executor and stale.worker_id:
            await stop_worker_of(ctx, stale.executor, stale.worker_id)
