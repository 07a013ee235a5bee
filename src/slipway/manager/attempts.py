"""One build attempt from its claim to its teardown (docs/architecture.md, "One attempt").

`Attempts` is the only writer of an attempt's state: the job key and deadline key in the
orchestrator, the queue lease (pushed out on heartbeats: `HeartbeatLeases`), the build
record's `attempts` and the phases its worker reports, this process's memory of the
attempts it holds and of the builds a user cancelled, and the running-workers gauge. The
scheduler begins attempts, the worker calls move them on (scheduled, running, a
heartbeat, a phase reported) and report their results; the event handlers, the
reconciler, a restart and shutdown end them. Every end goes through `end`, and every
removal of a job's keys and worker through `_teardown`. When the orchestrator lost its
keys (a Redis restarted empty: `key_loss`), `put_back_keys` writes back those of the
attempts held here that the database still has under way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from slipway import metrics
from slipway.config.models import AppConfig, ManagerConfig
from slipway.domain.attempts import AttemptRecord
from slipway.domain.phases import UNDER_WAY_PHASES, Phase, can_transition
from slipway.domain.results import (
    INITIAL_RETRIES,
    RETRIED_AT_ONCE,
    AttemptEnd,
    attempt_label,
    decide,
    failure_message,
    retry_message,
)
from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.manager.background import Background
from slipway.manager.build_limits import attempt_timeout
from slipway.manager.build_reads import BuildReads
from slipway.manager.db_retry import retry_transient
from slipway.manager.ended_jobs import EndedJobs
from slipway.manager.heartbeats import HeartbeatLeases
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.key_loss import KeyLoss
from slipway.manager.keys import (
    CANCEL_MARK_TTL,
    ENDED_PREFIX,
    JOB_PREFIX,
    cancel_key,
    deadline_key,
    ended_key,
    job_key,
)
from slipway.manager.phase_log import phase_entry
from slipway.manager.worker_env import worker_environment
from slipway.orchestrator.base import Orchestrator, OrchestratorError
from slipway.store.interfaces import SharedTransaction, SharedWrites, Store
from slipway.store.records import BuildRecord, LogEntry, QueueItem
from slipway.tokens.jwt import TokenService, TokenType
from slipway.tracing.build_tracing import BuildTracing, disabled

log = logging.getLogger("slipway.manager")

# how many cancelled builds a manager remembers (their workers are refused)
CANCELLED_REMEMBERED = 10_000
# extra queue-lease time beyond the orchestrator deadlines, so the lease (the backstop for a
# lost orchestrator) never fires before the orchestrator's own expiry would
LEASE_MARGIN = 60.0
# the setup time assumed for the claim's lease when no executor is configured
DEFAULT_SETUP_TIME = 500
# how long an "ended" marker outlives a job key that expired or was lost
ENDED_MARKER_TTL = 3600.0
# how long the end of an attempt keeps retrying its database write through an outage
END_RETRY_SECONDS = 120.0
# ... and at shutdown, which must not hang on it: an end not written is found later
# through the queue lease (manager_lost)
SHUTDOWN_RETRY_SECONDS = 5.0
# attempts whose keys are put back together, after the orchestrator lost them: their
# writes go in shared pipelines, their leases in one UPDATE
PUT_BACK_BATCH = 500
# after the orchestrator lost its keys, how long a worker of another manager's attempt is
# told to try again (rather than that its job ended) while that manager puts them back:
# it notices within a reconciler pass (at most 10 s) or at its first worker call
MIN_LOSS_GRACE = 20.0
# the phases only a registered (running) worker reports
REPORTED_WHILE_RUNNING = UNDER_WAY_PHASES - {Phase.BUILD_SCHEDULED}


class EndReason(StrEnum):
    """Who ends an attempt. The outcome (domain/results.py AttemptEnd) says what happens to
    the build; the reason says how the end was noticed, which decides how it is claimed
    and torn down."""

    RESULT = "result"  # the worker reported COMPLETE or ERROR, or no executor started one
    EXPIRY = "expiry"  # the job key (registration, heartbeat) or the deadline ran out
    CANCEL = "cancel"  # a user cancelled the build
    SHUTDOWN = "shutdown"  # this manager is stopping: the build goes back to the queue
    # this manager started again: the attempts of its previous life (take_back_orphans)
    RESTART = "restart"
    RECONCILE = "reconcile"  # the reconciler found the job key lost (or left by the dead)


@dataclass
class HeldAttempt:
    """What this process remembers of an attempt it began and has not seen end."""

    job: JobState
    # the build record the attempt began from, until its worker registers: what
    # registration hands the worker is the build's own parameters, which never change
    # (one database read fewer per build)
    begun_from: BuildRecord | None = None
    # set once the worker's start is recorded (stage `scheduled`); made on demand by a
    # registration that arrives before that
    scheduled: asyncio.Event | None = None
    # this process deleted the job key and is still writing the end
    ending: bool = False
    # when the scheduler's claim of its queue item began and ended (its trace's span)
    claimed: tuple[float, float] | None = None


def tries_used(job: JobState) -> int:
    """The build's tries used so far, this attempt's included (refunded ones are not)."""
    return max(1, INITIAL_RETRIES - job.retries_remaining)


def label(job: JobState) -> str:
    return attempt_label(job.attempt, tries_used(job), INITIAL_RETRIES)


def closed_attempts(
    attempts: list[AttemptRecord], job: JobState, end: AttemptEnd, now: float,
    *, counted: bool = True,
) -> list[AttemptRecord]:
    """The build's attempts with this one ended: its entry given `ended` and `outcome`,
    or, when its start is not recorded yet (a shared write still queued), the whole
    entry, started when it registered."""
    attempts = list(attempts)
    last = attempts[-1] if attempts else None
    if last is not None and last.attempt == job.attempt and last.is_open:
        attempts[-1] = last.closed(end, now, counted=counted)
    elif (last is None or last.attempt != job.attempt) and job.worker_id:
        started = AttemptRecord(attempt=job.attempt, executor=job.executor,
                                worker_id=job.worker_id, started=job.registered_at or now)
        attempts.append(started.closed(end, now, counted=counted))
    return attempts


def end_recorded(record: BuildRecord, job: JobState) -> bool:
    """Whether the build's record has this attempt closed already: its end was written
    (by another manager, or before its key came back: put back after a loss, or brought
    back by a failover to a replica that missed its deletion), and must not be twice."""
    return any(a.attempt == job.attempt and not a.is_open for a in record.attempts)


def orphaned_job(record: BuildRecord, item: QueueItem) -> JobState:
    """The job state of an attempt whose key was lost with its manager, rebuilt from what
    the store kept: the build's record (its job id, the attempt's entry once its worker's
    start was recorded) and its queue item (the tries left)."""
    assert record.job_id is not None
    last = record.attempts[-1] if record.attempts else None
    started = last if last is not None and last.is_open else None
    return JobState(
        job_id=record.job_id,
        build_id=record.id,
        namespace=item.namespace,
        queue_id=item.id,
        manager_id="",  # the previous life's, which the store does not keep
        retries_remaining=item.retries_remaining,
        attempt=started.attempt if started is not None else len(record.attempts) + 1,
        stage=JobStage.SCHEDULING if started is None else JobStage.RUNNING,
        executor=None if started is None else started.executor,
        worker_id=None if started is None else started.worker_id,
    )


class Attempts:
    def __init__(
        self,
        *,
        app_config: AppConfig,
        manager_config: ManagerConfig,
        store: Store[Any],
        shared_writes: SharedWrites,
        reads: BuildReads,
        orchestrator: Orchestrator,
        executors: list[Executor],
        tokens: TokenService,
        manager_id: str,
        background: Background,
        wake_scheduler: Callable[[], None],
        tracing: BuildTracing | None = None,
    ) -> None:
        self._tracing = tracing or disabled()
        self._app_config = app_config
        self._config = manager_config
        self._store = store
        self._shared_writes = shared_writes
        self._reads = reads
        self._orchestrator = orchestrator
        self._executors = executors
        self._tokens = tokens
        self._manager_id = manager_id
        self._background = background
        self._wake_scheduler = wake_scheduler
        self._held: dict[str, HeldAttempt] = {}
        # builds a user cancelled (from cancel events: any manager's workers of them are
        # refused), the latest CANCELLED_REMEMBERED
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        # the attempts seen to end (here, or their key deleted by another manager): their
        # workers' calls are refused (manager/current_attempt.py)
        self.ended = EndedJobs()
        self._leases = HeartbeatLeases(
            store.queue, lease_seconds=self.lease_seconds(JobStage.RUNNING),
            every=self._heartbeat_expiry / 2, queue_id_of=self._queue_id_of,
        )
        # the orchestrator's keys lost (a Redis restart): the held attempts' put back
        self.key_loss = KeyLoss(orchestrator, self.put_back_keys,
                                grace=max(MIN_LOSS_GRACE, 2 * self._heartbeat_expiry))

    @property
    def _heartbeat_expiry(self) -> float:
        return float(self._config.HEARTBEAT_EXPIRY)

    def _executor(self, name: str | None) -> Executor | None:
        return next((e for e in self._executors if e.name == name), None)

    async def close(self) -> None:
        """Fail what is still waiting in shared lease writes (the manager is stopping)."""
        await self._leases.close(RuntimeError("the build manager is stopping"))

    # --- what this process holds -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held

    def held(self) -> list[JobState]:
        return [h.job for h in self._held.values()]

    def job(self, job_id: str) -> JobState | None:
        held = self._held.get(job_id)
        return None if held is None else held.job

    def is_ending(self, job_id: str) -> bool:
        held = self._held.get(job_id)
        return held is not None and held.ending

    def begun_records(self) -> dict[str, BuildRecord]:
        """The records kept for registrations still to come, by job id."""
        return {i: h.begun_from for i, h in self._held.items() if h.begun_from is not None}

    def take_begun_record(self, job_id: str) -> BuildRecord | None:
        held = self._held.get(job_id)
        if held is None:
            return None
        record, held.begun_from = held.begun_from, None
        return record

    def scheduled_signal(self, job_id: str) -> asyncio.Event:
        """An event set when this process marks the job scheduled; for a job it does not
        hold, one that is never set (the caller's timeout turns it into polling)."""
        held = self._held.get(job_id)
        if held is None:
            return asyncio.Event()
        if held.scheduled is None:
            held.scheduled = asyncio.Event()
        return held.scheduled

    def _signal_scheduled(self, held: HeldAttempt) -> None:
        if held.scheduled is not None:
            held.scheduled.set()  # a registration waiting for this re-reads the key
            held.scheduled = None

    def forget(self, job_id: str, *, always_wake: bool = True) -> bool:
        """Stop counting the attempt against capacity (it ended, here or elsewhere).
        True if this process held it."""
        self.ended.add(job_id)
        held = self._held.pop(job_id, None)
        if held is not None:
            self._signal_scheduled(held)  # a waiting registration finds the job gone
            metrics.RUNNING_WORKERS.set(len(self._held))
        # by default always wake: the DELETE event of this job may have forgotten it
        # already, while our queue update was not yet committed, and that earlier
        # wake-up found nothing to claim
        if held is not None or always_wake:
            self._wake_scheduler()
        return held is not None

    # --- leases and key lifetimes ------------------------------------------------------

    def lease_margin(self) -> float:
        """LEASE_MARGIN, shortened for short heartbeat expiries (tests, small set-ups) so
        a dead manager's claim that never reached the orchestrator is retried soon too."""
        return min(LEASE_MARGIN, max(5.0, 2 * self._heartbeat_expiry))

    def key_lifetime(self, stage: JobStage, setup_time: float = 0.0) -> float:
        """How long the job key lives at `stage` without news of the worker."""
        config = self._config
        if stage is JobStage.SCHEDULING:
            return float(config.JOB_REGISTRATION_TIMEOUT)
        if stage is JobStage.SCHEDULED:
            return float(setup_time)
        return self._heartbeat_expiry

    def lease_seconds(self, stage: JobStage, setup_time: float | None = None) -> float:
        """The queue lease of an attempt at `stage`: the job key's lifetime and the
        margin. A claim's lease covers the worker's start too (the slowest executor's
        SETUP_TIME, `setup_time` unless given): it is pushed out only once the worker is
        recorded."""
        if stage is JobStage.SCHEDULING:
            setup = setup_time if setup_time is not None else max(
                (e.setup_time for e in self._executors), default=DEFAULT_SETUP_TIME)
            return self.key_lifetime(stage) + setup + self.lease_margin()
        return self.key_lifetime(stage, setup_time or 0.0) + self.lease_margin()

    # --- begin -------------------------------------------------------------------------

    def begin(self, item: QueueItem, claimed: tuple[float, float] | None = None) -> JobState:
        """The attempt for a claimed item, counted against capacity from this moment
        (`claimed`: when the claim began and ended)."""
        job = JobState(
            job_id=str(uuid.uuid4()),
            build_id=item.build_id,
            namespace=item.namespace,
            queue_id=item.id,
            manager_id=self._manager_id,
            retries_remaining=item.retries_remaining,
            attempt=0,  # numbered once the build's record is read (_open)
        )
        self._held[job.job_id] = HeldAttempt(job, claimed=claimed)
        metrics.RUNNING_WORKERS.set(len(self._held))
        return job

    async def start(self, item: QueueItem, job: JobState) -> None:
        """Hand a begun attempt's item to the first executor that takes it."""
        try:
            begun = await self._open(item, job)
        except Exception:
            # Redis or PostgreSQL unreachable before anything started: hand the item back
            # (attempt refunded) rather than let it sit out its lease
            log.exception("could not start an attempt of build %s; it goes back to the "
                          "queue", item.build_id)
            await self._give_back(item, job)
            return
        if begun is None:
            return
        record, attempts = begun
        held = self._held.get(job.job_id)
        if held is not None:
            held.begun_from = record
        self._trace_claim(record, job, held)
        previous_job = record.job_id
        if previous_job and previous_job != job.job_id:
            # the lease of an earlier attempt ran out (its manager died): make sure it is
            # gone
            try:
                await self.end_stale(previous_job)
            except Exception:
                log.warning("could not check the earlier attempt %s of build %s",
                            previous_job, item.build_id)

        errors: list[str] = []
        for executor in self._executors:
            if not executor.allows(item.namespace, item.retries_remaining):
                metrics.EXECUTOR_FALLBACKS.labels(executor.name, "not_allowed").inc()
                continue
            token = self._tokens.mint(
                TokenType.REGISTRATION, item.build_id, job.job_id, executor.setup_time + 30
            )
            spec = WorkerSpec(
                build_id=item.build_id,
                job_id=job.job_id,
                namespace=item.namespace,
                registration_token=token,
                manager_address=self._app_config.buildman_address,
                environment=worker_environment(
                    self._app_config, executor.config, token=token, build_id=item.build_id,
                    registry=record.registry,
                ),
                manager_id=self._manager_id,
            )
            try:
                with self._tracing.span(item.build_id, "executor start",
                                        **{"slipway.executor": executor.name,
                                           "slipway.attempt": job.attempt}):
                    worker_id = await executor.start_worker(spec)
                self._tracing.worker_started(job.job_id)
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
                await self._scheduled(job, attempts, executor.name, worker_id,
                                      executor.setup_time)
            except Exception:
                # the worker runs; if the job key expires meanwhile the expiry handler (or
                # the reconciler) ends the attempt and stops it
                log.exception("could not record the worker of build %s", item.build_id)
            return
        detail = "; ".join(errors) or (
            "no configured executor accepts this build "
            "(MINIMUM_RETRY_THRESHOLD, NAMESPACE_WHITELIST or STAGED_ROLLOUT)"
        )
        await self.end(job, EndReason.RESULT, AttemptEnd.EXECUTOR_FAILED, detail=detail)

    def _trace_claim(self, record: BuildRecord, job: JobState, held: HeldAttempt | None
                     ) -> None:
        """The queue wait (from the submit, or the previous attempt's end) and the claim
        that ended it, as spans of the build's trace."""
        claimed = held.claimed if held is not None else None
        now = time.time()
        claim_start, claim_end = claimed or (now, now)
        ended = [a.ended for a in record.attempts if a.ended is not None]
        waited_from = max(ended) if job.attempt > 1 and ended else record.started
        reason = self._tracing.waited_for(record.id, job.attempt)
        self._tracing.record(record.id, "queue wait", waited_from, claim_start,
                             **{"slipway.queue.reason": reason,
                                "slipway.attempt": job.attempt})
        self._tracing.record(record.id, "claim", claim_start, claim_end,
                             **{"slipway.manager": self._manager_id,
                                "slipway.attempt": job.attempt})

    async def _open(
        self, item: QueueItem, job: JobState
    ) -> tuple[BuildRecord, list[AttemptRecord]] | None:
        """Create the job key and move the build to build-scheduled. Returns the record
        as it was before (with the previous attempt's job id) and the attempts now
        recorded, or None when there is nothing to start (cancelled meanwhile)."""
        store = self._store
        record = await self._reads.get(item.build_id)
        if record is None or record.phase.is_final:
            # cancelled between the claim and now
            async with store.write() as conn:
                await store.queue.complete(conn, item.id)
            self.forget(job.job_id)
            return None
        extra: dict[str, Any] = {}
        attempts = list(record.attempts)
        entries = [phase_entry(Phase.BUILD_SCHEDULED)]
        last = attempts[-1] if attempts else None
        if last is not None and last.is_open:
            # the queue lease of an earlier attempt ran out with no end recorded: its
            # manager died (and its job key was lost too, or its expiry was never
            # handled). Every other end, a shutdown's included, records itself before the
            # item is free again
            attempts[-1] = last.closed(AttemptEnd.MANAGER_LOST, time.time())
            extra["attempts"] = attempts
            entries.insert(0, LogEntry(
                f"Attempt {last.attempt} was lost with the build manager running it; "
                "trying again", "error", {}))
        # every attempt the build had is in its history, so each gets the next number
        job.attempt = len(attempts) + 1
        await self._orchestrator.set(
            job_key(job.job_id),
            job.dumps(),
            overwrite=False,
            expiration=self.key_lifetime(JobStage.SCHEDULING),
        )
        moved = await self._shared_writes.run(lambda conn: store.builds.move_phase(
            conn,
            item.build_id,
            Phase.BUILD_SCHEDULED,
            log=entries,
            job_id=job.job_id,
            retries_remaining=item.retries_remaining,
            **extra,
        ))
        if not moved:
            await self._orchestrator.delete(job_key(job.job_id))
            self.forget(job.job_id)
            return None
        return record, attempts

    async def _give_back(self, item: QueueItem, job: JobState) -> None:

        async def give_back() -> None:
            async with self._store.write() as conn:
                await self._store.queue.incomplete(
                    conn, item.id, restore_retry=True,
                    retry_after=float(self._config.RETRY_AFTER),
                )

        try:
            await self._orchestrator.delete(job_key(job.job_id))
            await retry_transient(give_back, f"giving build {item.build_id} back",
                                  give_up_after=END_RETRY_SECONDS)
        except Exception:
            log.warning("could not give build %s back either; its queue lease expires "
                        "instead", item.build_id)
        self.forget(job.job_id)

    # --- scheduled, running ------------------------------------------------------------

    async def _scheduled(
        self,
        job: JobState,
        attempts: list[AttemptRecord],
        executor: str,
        worker_id: str,
        setup_time: int,
    ) -> None:
        """Record the started worker: in the job key (registration waits for it), then in
        the build's attempts. It is appended to `attempts`, those _open wrote, without
        reading them again: only this attempt writes them now, and its end changes them
        only once this entry is there."""
        scheduling = job.dumps()
        job.stage = JobStage.SCHEDULED
        job.executor = executor
        job.worker_id = worker_id
        swapped = await self._orchestrator.compare_and_set(
            job_key(job.job_id), scheduling, job.dumps(),
            expiration=self.key_lifetime(JobStage.SCHEDULED, setup_time),
        )
        held = self._held.get(job.job_id)
        if held is not None:
            self._signal_scheduled(held)
        if not swapped:
            # the job ended (cancelled, or JOB_REGISTRATION_TIMEOUT passed) while we were
            # starting the worker: the worker must not outlive it
            await self._stop_worker(executor, worker_id)
            return
        started = AttemptRecord(attempt=job.attempt, executor=executor, worker_id=worker_id,
                                started=time.time())
        entry = LogEntry(f"{label(job)}: worker started on executor {executor}", None, {})
        lease = self.lease_seconds(JobStage.SCHEDULED, setup_time)

        async def record_start(conn: SharedTransaction) -> None:
            conn.extend_lease(job.queue_id, lease)
            # nothing changes once the attempt has ended (or been retried) meanwhile: a
            # fast worker can finish before this shared write commits, and its end then
            # records the attempt whole (closed_attempts)
            await self._store.builds.update_if_job(
                conn, job.build_id, job.job_id, executor=executor,
                attempts=[*attempts, started], log=[entry],
            )

        await retry_transient(lambda: self._shared_writes.run(record_start),
                              f"recording the worker of build {job.build_id}",
                              give_up_after=END_RETRY_SECONDS)

    async def running(self, job: JobState, record: BuildRecord) -> bool:
        """The worker registered: move `job` (as its key holds it) to RUNNING, start its
        deadline (the build's timeout, at most MACHINE_MAX_TIME) and push its lease out.
        False if the key holds something else (the caller re-reads it)."""
        previous = job.dumps()
        timeout = attempt_timeout(
            record.options, record.namespace, timeouts=self._app_config.BUILD_TIMEOUTS,
            machine_max_time=int(self._config.MACHINE_MAX_TIME),
        )
        job = replace(job, stage=JobStage.RUNNING, registered_at=time.time(),
                      timeout=timeout.seconds, timeout_set_by=timeout.set_by)
        if not await self._orchestrator.compare_and_set(
            job_key(job.job_id), previous, job.dumps(),
            expiration=self.key_lifetime(JobStage.RUNNING),
        ):
            return False
        await self._orchestrator.set(deadline_key(job.job_id), job.dumps(),
                                   expiration=float(timeout.seconds))
        held = self._held.get(job.job_id)
        if held is not None:
            held.job = job
        lease = self.lease_seconds(JobStage.RUNNING)

        async def record_registration(conn: SharedTransaction) -> None:
            conn.extend_lease(job.queue_id, lease)
            conn.append_log(record.id, [LogEntry("Build worker registered", None, {})])

        try:
            await self._shared_writes.run(record_registration)
        except Exception as exc:
            # registered all the same (the job key says so); the lease is pushed out
            # again by the heartbeats
            log.warning("registration of job %s: database write failed (%s)",
                        job.job_id, type(exc).__name__)
        return True

    async def touch(self, job_id: str) -> bool:
        """News of the worker (a heartbeat, a log line): push the running job key's
        expiry out. False when the key is gone (the attempt ended, or expired)."""
        return await self._orchestrator.touch(
            job_key(job_id), self.key_lifetime(JobStage.RUNNING)
        )

    async def heartbeat(self, build_id: str, job_id: str) -> bool:
        """A worker's heartbeat: its job key's expiry and, now and then, its queue lease
        pushed out. False (the worker stops) when its build was cancelled or its attempt
        has ended. OrchestratorError (the worker tries again) while the orchestrator is
        unreachable, or is getting back the keys it lost."""
        if self.is_cancelled(build_id):
            return False
        try:
            alive = await self.touch_or_put_back(job_id)
        except OrchestratorError:
            # Redis is away, not the worker: its lease still goes out, so that no manager
            # takes the build over while the orchestrator cannot tell the worker lives
            self.key_loss.outage_seen()
            if job_id in self._held:
                await self._leases.heard(job_id)
            raise
        if not alive:
            self._leases.forget(job_id)
            return False
        await self._leases.heard(job_id)
        return True

    async def touch_or_put_back(self, job_id: str) -> bool:
        """`touch`, and when the key is missing because the orchestrator lost it, touch
        it again once it is put back (OrchestratorError while another manager puts back
        its attempt's key). False when the attempt has ended."""
        return await self.touch(job_id) or await self._touch_put_back(job_id)

    async def _touch_put_back(self, job_id: str) -> bool:
        """A heartbeat found its job key missing: touch it again if the orchestrator had
        lost it and it is back."""
        if not await self.key_loss.check():
            return False  # no loss: the attempt ended
        if job_id not in self._held:
            raise OrchestratorError("the orchestrator lost its keys (Redis restarted?); "
                                    "the manager of this job is putting them back")
        return await self.touch(job_id)

    async def current_job(self, job_id: str) -> JobState | None:
        """The job as its key holds it; None when it has ended. A key the orchestrator lost
        is put back first (OrchestratorError, so the worker tries again, for another
        manager's attempt: that manager puts it back)."""
        raw = await self._orchestrator.get(job_key(job_id))
        if raw is None and await self.key_loss.check():
            if job_id not in self._held:
                raise OrchestratorError("the orchestrator lost its keys (Redis restarted?); "
                                        "the manager of this job is putting them back")
            raw = await self._orchestrator.get(job_key(job_id))
        return None if raw is None else JobState.loads(raw)

    async def running_job(self, job_id: str) -> JobState | None:
        """`current_job` for a worker that holds a job token, so whose registration went
        through: a key at an earlier stage was written back from before it (put back by
        a manager whose copy missed it, the registration having gone to another manager;
        or left so by a failover that lost the write) and is moved on to `running`, with
        a deadline key, so the worker's reports are taken."""
        job = await self.current_job(job_id)
        if job is None or job.stage is JobStage.RUNNING:
            return job
        running = replace(job, stage=JobStage.RUNNING,
                          registered_at=job.registered_at or time.time())
        if not await self._orchestrator.compare_and_set(
            job_key(job_id), job.dumps(), running.dumps(),
            expiration=self.key_lifetime(JobStage.RUNNING),
        ):
            return await self.current_job(job_id)  # changed meanwhile: as it is now
        await self._orchestrator.set(deadline_key(job_id), running.dumps(), overwrite=False,
                                     expiration=float(self._config.MACHINE_MAX_TIME))
        held = self._held.get(job_id)
        if held is not None:
            held.job = running
        log.info("job %s of build %s was registered before its key was put back; it is "
                 "running", job_id, job.build_id)
        return running

    async def _queue_id_of(self, job_id: str) -> int | None:
        """The queue item of a job: held here, or (a worker of another manager's attempt
        heartbeating here) read from its key."""
        held = self._held.get(job_id)
        if held is not None:
            return held.job.queue_id
        raw = await self._orchestrator.get(job_key(job_id))
        return None if raw is None else JobState.loads(raw).queue_id

    async def phase_reported(
        self,
        job: JobState,
        sequence_number: int,
        phase: Phase,
        *,
        pull_metadata: Mapping[str, str],
        image_digest: str = "",
        error_message: str = "",
    ) -> bool:
        """The worker of the running `job` reports `phase` with SetPhase number
        `sequence_number` (newer than the job's last): keep the number in the job key,
        then end the attempt (`complete`, `error`) or move the build on. False when the
        report is refused: a concurrent SetPhase won (the worker resends with a newer
        number), or the build cannot move there (phases.MOVES)."""
        previous = job.dumps()
        job.phase_seq = sequence_number
        if not await self._orchestrator.compare_and_set(
            job_key(job.job_id), previous, job.dumps(),
            expiration=self.key_lifetime(JobStage.RUNNING),
        ):
            return False
        held = self._held.get(job.job_id)
        if held is not None:
            held.job = job  # what a put-back writes: the newest sequence number seen
        if phase.is_final:
            # an end is refused like any move: a build cancelled meanwhile is not
            # completed by its worker
            record = await self._store.builds.get(job.build_id)
            if record is None or not can_transition(record.phase, phase):
                log.debug("SetPhase of job %s refused: build is %s", job.job_id,
                          record.phase.value if record else "gone")
                return False
        if phase is Phase.COMPLETE:
            return await self.end(job, EndReason.RESULT, AttemptEnd.COMPLETED,
                                  image_digest=image_digest or None)
        if phase is Phase.ERROR:
            # the message goes to the build's `error`; not to its log as well, where the
            # worker has put it already as an `error` line (docs/protocol.md)
            return await self.end(job, EndReason.RESULT, AttemptEnd.USER_ERROR,
                                  detail=error_message)
        async with self._store.write() as conn:
            moved = await self._store.builds.move_phase(
                conn, job.build_id, phase, log=[phase_entry(phase, **pull_metadata)])
        if not moved:
            log.debug("SetPhase %s of job %s refused by the phase table", phase.value,
                      job.job_id)
        return moved

    # --- cancels -----------------------------------------------------------------------

    def is_cancelled(self, build_id: str) -> bool:
        """Whether a user cancelled the build (as this process heard)."""
        return build_id in self._cancelled

    async def cancelled(self, build_id: str) -> None:
        """A user cancelled the build (the API moved it to `cancelled` and wrote its
        cancel key): refuse its workers from now on, and end the attempts of it held
        here."""
        self._cancelled[build_id] = None
        while len(self._cancelled) > CANCELLED_REMEMBERED:
            self._cancelled.popitem(last=False)
        for job in self.held():
            if job.build_id == build_id:
                # (a key the orchestrator lost is put back first: its delete decides the end)
                current = await self.current_job(job.job_id) or job
                await self.end(current, EndReason.CANCEL, AttemptEnd.CANCELLED)

    # --- after the orchestrator lost its keys ------------------------------------------

    async def put_back_keys(self) -> int:
        """Put back the orchestrator keys of the attempts this process holds, as they were
        (KeyLoss calls it once the orchestrator lost its keys, or after an outage); how
        many job keys were written. The database says which attempts are still under
        way: only one whose build record has it as the current attempt, not closed, and
        whose queue item is still leased (its lease pushed out here) gets its keys back;
        the reconciler ends or forgets the others. A cancelled build gets its attempt's
        key and its cancel key back, and its cancel then ends the attempt as usual."""
        jobs = [h.job for h in self._held.values() if not h.ending]
        if not jobs:
            return 0
        ended = await self._orchestrator.get_prefixed(ENDED_PREFIX)  # ends claimed
        restored = 0
        for start in range(0, len(jobs), PUT_BACK_BATCH):
            restored += await self._put_back_batch(jobs[start:start + PUT_BACK_BATCH], ended)
        return restored

    async def _put_back_batch(self, jobs: list[JobState], ended: Mapping[str, str]) -> int:
        records = await self._store.builds.get_many(sorted({j.build_id for j in jobs}))
        current = [j for j in jobs if self._still_current(j, records.get(j.build_id), ended)]
        cancelled = [j for j in current if records[j.build_id].phase is Phase.CANCELLED]
        under_way = [j for j in current if not records[j.build_id].phase.is_final]
        leased = await self._store.queue.extend_processing_many(
            [(j.queue_id, self.lease_seconds(j.stage, self._setup_time(j)))
             for j in under_way]) if under_way else []
        kept = [j for j, lease in zip(under_way, leased, strict=True) if lease] + cancelled
        kept = [self._as_reported(j, records[j.build_id]) for j in kept]
        written = await asyncio.gather(*(self._put_back_job(j) for j in kept))
        # a cancel written to the database while the orchestrator was away (or lost with
        # it): every manager refuses the build's workers, and the cancel ends the attempt
        # here, claimed by deleting the key just put back
        await asyncio.gather(*(
            self._orchestrator.set(cancel_key(j.build_id), "1", expiration=CANCEL_MARK_TTL)
            for j in cancelled))
        return sum(written)

    def _still_current(self, job: JobState, record: BuildRecord | None,
                       ended: Mapping[str, str]) -> bool:
        """Whether the database still has `job` as its build's attempt under way (or
        cancelled, its end not recorded yet), and no manager has claimed its end."""
        held = self._held.get(job.job_id)
        return (
            held is not None and not held.ending
            and record is not None and record.job_id == job.job_id
            and not end_recorded(record, job)
            and (not record.phase.is_final or record.phase is Phase.CANCELLED)
            and ended_key(job.job_id) not in ended
        )

    def _as_reported(self, job: JobState, record: BuildRecord) -> JobState:
        """The job as the database knows it further on than this process: a worker that
        registered with another manager, and has reported a phase since, is running."""
        if job.stage is JobStage.RUNNING or record.phase not in REPORTED_WHILE_RUNNING:
            return job
        last = record.attempts[-1] if record.attempts else None
        started = last.started if last is not None and last.attempt == job.attempt else None
        running = replace(job, stage=JobStage.RUNNING,
                          registered_at=job.registered_at or started or time.time())
        held = self._held.get(job.job_id)
        if held is not None:
            held.job = running
        return running

    async def _put_back_job(self, job: JobState) -> bool:
        """The job key as this process last wrote it, living a full stage's time (a
        worker not registered yet gets its SETUP_TIME again), unless a key is there; a
        running job's deadline key with what is left of MACHINE_MAX_TIME."""
        if not await self._orchestrator.compare_and_set(
            job_key(job.job_id), None, job.dumps(),
            expiration=self.key_lifetime(job.stage, self._setup_time(job)),
        ):
            return False  # still there: kept through the outage
        if job.stage is JobStage.RUNNING:
            started = job.registered_at or time.time()
            left = float(self._config.MACHINE_MAX_TIME) - (time.time() - started)
            # past it already: the deadline expires at once and ends the attempt as usual
            await self._orchestrator.set(deadline_key(job.job_id), job.dumps(),
                                         overwrite=False, expiration=max(0.001, left))
        return True

    def _setup_time(self, job: JobState) -> float:
        executor = self._executor(job.executor)
        return float(executor.setup_time if executor is not None else DEFAULT_SETUP_TIME)

    # --- end ---------------------------------------------------------------------------

    async def end(
        self,
        job: JobState,
        reason: EndReason,
        outcome: AttemptEnd,
        *,
        detail: str = "",
        image_digest: str | None = None,
        key_gone: bool = False,
    ) -> bool:
        """End the attempt exactly once (whoever deletes the job key wins): tear it down
        (deadline key, worker), close its record and retry or finish the build, then
        forget it. `key_gone`: the job key expired or was lost, so a marker key decides
        who ends it. False when it had already ended."""
        if not await self._claim_end(job.job_id, key_gone):
            self.forget(job.job_id)
            return False
        log.debug("attempt %d of build %s ends (%s: %s)", job.attempt, job.build_id,
                  reason.value, outcome.value)
        # from now on its worker's calls are refused, before the build is retried
        self.ended.add(job.job_id, outcome)
        held = self._held.get(job.job_id)
        if held is not None:
            held.ending = True
        await self._teardown(
            job,
            reported=outcome in (AttemptEnd.COMPLETED, AttemptEnd.USER_ERROR),
            # a stopping manager waits for its workers; any other end records the
            # outcome without waiting for the worker to go
            wait=reason is EndReason.SHUTDOWN,
        )
        shutting_down = reason is EndReason.SHUTDOWN
        try:
            await retry_transient(
                lambda: self._record_end(job, outcome, detail, image_digest),
                f"ending attempt {job.attempt} of build {job.build_id}",
                give_up_after=SHUTDOWN_RETRY_SECONDS if shutting_down else END_RETRY_SECONDS,
            )
        except Exception:
            if held is not None:
                held.ending = False  # the reconciler ends it again (its key is gone)
            if not shutting_down:
                raise
            log.warning("could not record the end of build %s; its queue lease expires "
                        "and another manager retries it", job.build_id)
        else:
            self.forget(job.job_id)
        return True

    async def end_stale(self, job_id: str, job: JobState | None = None) -> bool:
        """End an attempt this process does not hold and whose build has moved on (its
        manager died): its keys and worker go, the build's record is not touched.
        `job` is its key's value, when the caller has read it already."""
        if job is None:
            raw: Any = await self._orchestrator.get(job_key(job_id))
            if raw is None:
                return False
            job = JobState.loads(raw)
        if not await self._claim_end(job_id, key_gone=False):
            return False
        self.ended.add(job_id)
        await self._teardown(job, reported=False, wait=True)
        return True

    async def take_back_orphans(self) -> int:
        """End the attempts of this manager's previous life, `manager_restarted`, and put
        their builds back in the queue at once; how many. Only for the one manager that
        could have held them (the caller knows: an orchestrator in this process's memory
        is shared with no other manager, and its keys died with the previous process).
        An attempt whose job key is still there is someone's, and left alone."""
        records = await self._store.builds.list_in_phases(sorted(UNDER_WAY_PHASES))
        live = await self._orchestrator.get_prefixed(JOB_PREFIX)
        taken = 0
        for record in records:
            job_id = record.job_id
            if job_id is None or job_id in self._held or job_key(job_id) in live:
                continue
            item = await self._store.queue.get_for_build(record.id)
            if item is None:
                continue
            job = orphaned_job(record, item)
            log.info("attempt %d of build %s was left by this manager's previous life; "
                     "it goes back to the queue", job.attempt, job.build_id)
            if await self.end(job, EndReason.RESTART, AttemptEnd.MANAGER_RESTARTED,
                              key_gone=True):
                taken += 1
        return taken

    async def shut_down(self) -> None:
        """Give back every attempt this process holds (the manager is stopping)."""
        jobs = self.held()
        await asyncio.gather(*(
            self.end(job, EndReason.SHUTDOWN, AttemptEnd.MANAGER_SHUTDOWN) for job in jobs
        ))
        for job in jobs:
            self.forget(job.job_id, always_wake=False)

    async def _claim_end(self, job_id: str, key_gone: bool) -> bool:
        if key_gone:
            # no delete to decide who ends it: a marker key does (an EXPIRE delivered
            # twice, or the reconciler and the expiry handler both seeing the key gone)
            return await self._orchestrator.set(
                ended_key(job_id), self._manager_id, overwrite=False,
                expiration=ENDED_MARKER_TTL,
            )
        return await self._orchestrator.delete(job_key(job_id))

    async def _teardown(self, job: JobState, *, reported: bool, wait: bool) -> None:
        """Remove what an ended attempt leaves running: its deadline key and its worker
        (one that `reported` its build's end may first leave by itself)."""
        try:
            await self._orchestrator.delete(deadline_key(job.job_id))
        except Exception:  # it expires later and finds the job gone; nothing else to do
            log.warning("could not remove the deadline key of job %s", job.job_id)
        if not (job.executor and job.worker_id):
            return
        stop = self._stop_worker(job.executor, job.worker_id, reported=reported)
        if wait:
            await stop
        else:
            self._background.spawn(stop, "stopping a worker")

    async def _record_end(
        self, job: JobState, outcome: AttemptEnd, detail: str, image_digest: str | None
    ) -> None:
        """Close the attempt in the build's record and finish its queue item, or put it
        back: one transaction; then, for a build that ended, its trace's root span."""
        ended_as = await self._write_end(job, outcome, detail, image_digest)
        if ended_as is not None:
            self._tracing.finish(job.build_id, ended_as[0], ended_as[1],
                                 **{"slipway.attempts": job.attempt})

    async def _write_end(
        self, job: JobState, outcome: AttemptEnd, detail: str, image_digest: str | None
    ) -> tuple[float, str] | None:
        """`_record_end`'s transaction; (submitted, final phase) when the build ended."""
        store = self._store
        action = decide(outcome, job.retries_remaining)
        # an attempt given back at shutdown does not count against the build's tries
        refunded = outcome is AttemptEnd.MANAGER_SHUTDOWN
        now = time.time()
        async with store.write() as conn:
            record = await store.builds.get(job.build_id, conn)
            if record is None or record.job_id not in (None, job.job_id):
                return None  # a newer attempt owns the build now
            if end_recorded(record, job):
                return None
            if record.phase.is_final:
                # cancelled by a user: only the queue item is left to finish
                closing = AttemptEnd.CANCELLED if refunded else outcome
                await store.queue.complete(conn, job.queue_id)
                await store.builds.update(conn, job.build_id, attempts=closed_attempts(
                    record.attempts, job, closing, now))
                return (record.started, record.phase.value)
            attempts = closed_attempts(record.attempts, job, outcome, now,
                                       counted=not refunded)
            if action.retry:
                await self._put_back(conn, job, outcome, detail, attempts, refunded)
                return None
            final = action.final_phase or Phase.INTERNAL_ERROR
            error = None
            entries: list[LogEntry] = []
            if final is Phase.INTERNAL_ERROR:
                error = failure_message(outcome, tries_used(job), detail)
            elif final is Phase.ERROR:
                error = detail or "the build failed"
            if error and final is not Phase.ERROR:
                entries.append(LogEntry(error, "error", {}))
            entries.append(phase_entry(final))
            await store.queue.complete(conn, job.queue_id)
            if not await store.builds.move_phase(
                conn, job.build_id, final, log=entries, completed=now,
                error=error, image_digest=image_digest, attempts=attempts,
                secrets_stored=bool(record.options.get("secrets")),
            ):
                return None
        metrics.BUILDS_FINISHED.labels(final.value).inc()
        return (record.started, final.value)

    async def _put_back(
        self, conn: Any, job: JobState, outcome: AttemptEnd, detail: str,
        attempts: list[AttemptRecord], refunded: bool,
    ) -> None:
        store = self._store
        if refunded:
            # another manager (or our next start) takes it at once
            await store.queue.incomplete(conn, job.queue_id, restore_retry=True)
            message = LogEntry(
                f"Build manager shutting down: {label(job)} was stopped; it does not "
                "count against the build's tries, and the build goes back to the queue",
                None, {})
            retries: dict[str, Any] = {"retries_remaining": job.retries_remaining + 1}
        else:
            retry_after = 0.0 if outcome in RETRIED_AT_ONCE else float(self._config.RETRY_AFTER)
            await store.queue.incomplete(conn, job.queue_id, retry_after=retry_after)
            message = LogEntry(retry_message(outcome, label(job), detail), "error", {})
            retries = {}
            metrics.BUILD_RETRIES.labels(outcome.value).inc()
        await store.builds.move_phase(
            conn, job.build_id, Phase.WAITING, job_id=None, attempts=attempts,
            log=[message, phase_entry(Phase.WAITING)], **retries,
        )

    async def _stop_worker(
        self, executor_name: str, worker_id: str, *, reported: bool = False
    ) -> None:
        """Stop a worker; one that `reported` its build's end may first leave by itself."""
        executor = self._executor(executor_name)
        if executor is None:
            log.warning("cannot stop worker %s: no executor named %s here", worker_id,
                        executor_name)
            return
        if executor.config.DEBUG:
            log.info("DEBUG is set on %s: keeping worker %s", executor_name, worker_id)
            return
        stop: Awaitable[None] = (executor.release_worker(worker_id) if reported
                                 else executor.stop_worker(worker_id))
        try:
            await stop
        except Exception:
            log.exception("executor %s failed to stop worker %s", executor_name, worker_id)
