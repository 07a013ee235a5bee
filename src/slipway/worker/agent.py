"""The worker's side of the buildman protocol: dial, register, heartbeat, run the build.

Exit codes: 0 the manager has the last word (COMPLETE or ERROR delivered, or it or the
executor told us to stop); 1 the worker itself failed; 3 the manager could not be reached
or refused us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import BuildManagerStub
from slipway.tracing.wire import TRACEPARENT_KEY
from slipway.worker import tracing
from slipway.worker.attempt_ended import attempt_ended
from slipway.worker.build import run_build
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.errors import ManagerUnreachable, StopRequested
from slipway.worker.reporter import Reporter
from slipway.worker.retry import (
    CALL_TIMEOUT,
    REGISTER_TIMEOUT,
    RetryWindow,
    call_with_retry,
    describe,
    is_retryable,
)
from slipway.worker.tracing import WorkerTrace

log = logging.getLogger("slipway.worker")

# what runs one build once registered: worker/build.py's, or a test's scripted build
BuildRunner = Callable[[pb.BuildPack, WorkerEnvironment, Reporter], Coroutine[Any, Any, None]]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_UNREACHABLE = 3
# how long the clean-up after a reported end may take before the worker leaves anyway
CLEANUP_LIMIT_S = 120.0
# how long a worker told to stop tries to deliver its last log lines
REPORTER_CLOSE_LIMIT_S = 2.0


def open_channel(env: WorkerEnvironment) -> grpc.aio.Channel:
    """Plaintext when INSECURE=true, else TLS verified with TLS_CERT_PATH or the system CAs."""
    options = [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_permit_without_calls", 1)]
    if env.insecure:
        return grpc.aio.insecure_channel(env.server, options=options)
    root = Path(env.tls_cert_path).read_bytes() if env.tls_cert_path else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.aio.secure_channel(env.server, credentials, options=options)


async def register(stub: BuildManagerStub, env: WorkerEnvironment,
                   trace: WorkerTrace | None = None) -> pb.BuildPack:
    """The BuildPack; `trace` joins the build's trace the manager names."""
    began = time.time()
    traceparent: str | None = None

    async def call() -> pb.BuildPack:
        nonlocal traceparent
        request = pb.BuildJobArgs(register_jwt=env.token)
        answer = stub.RegisterBuildJob(request, timeout=REGISTER_TIMEOUT)
        pack = await answer
        for key, value in await answer.initial_metadata() or ():
            if key == TRACEPARENT_KEY and isinstance(value, str):
                traceparent = value
        return pack

    pack = await call_with_retry("RegisterBuildJob", env.retry_window, call)
    if trace is not None:
        trace.join(traceparent, (began, time.time()))
    return pack


async def heartbeat(stub: BuildManagerStub, job_jwt: str, env: WorkerEnvironment) -> None:
    """Beat every heartbeat_interval on one stream; raise StopRequested when the manager
    answers false, ManagerUnreachable when it cannot be reached for retry_window."""
    backoff = RetryWindow(env.retry_window)
    while True:
        call = stub.Heartbeat()
        try:
            while True:
                await call.write(pb.HeartbeatRequest(job_jwt=job_jwt))
                async with asyncio.timeout(CALL_TIMEOUT):
                    response = await call.read()
                if response is grpc.aio.EOF:
                    raise asyncio.InvalidStateError("the manager ended the heartbeat stream")
                backoff.reset()
                if not response.reply:
                    raise StopRequested("the manager answered the heartbeat with false")
                await asyncio.sleep(env.heartbeat_interval)
        except grpc.aio.AioRpcError as exc:
            if not is_retryable(exc):
                raise attempt_ended(exc, "Heartbeat") or ManagerUnreachable(
                    f"Heartbeat: the manager refused ({describe(exc)})"
                ) from None
            await backoff.wait("Heartbeat", exc)
        except (asyncio.InvalidStateError, TimeoutError) as exc:
            await backoff.wait("Heartbeat", exc)
        finally:
            call.cancel()


async def run_worker(env: WorkerEnvironment, stop: asyncio.Event | None = None,
                     *, build: BuildRunner = run_build) -> int:
    """Register, build, report. Setting `stop` (the worker was sent SIGTERM) ends the
    build: its processes are ended and its files removed before this returns. `build`
    runs the build (tests give a scripted one)."""
    # httpx logs every request URL at INFO; a presigned package URL signs in its query
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log.info(
        "worker for build %s: manager %s (%s), runtime %s",
        env.build_uuid or "?",
        env.server,
        "plaintext" if env.insecure else "TLS",
        env.container_runtime,
    )
    stopped = asyncio.create_task((stop or asyncio.Event()).wait(), name="slipway-stop")
    try:
        async with open_channel(env) as channel:
            return await _run(env, BuildManagerStub(channel), stopped, build)
    finally:
        stopped.cancel()


async def _run(env: WorkerEnvironment, stub: BuildManagerStub, stopped: asyncio.Task[bool],
               run: BuildRunner) -> int:
    trace = WorkerTrace(tracing.assigned_at or tracing.process_started(),
                        standby=tracing.assigned_at is not None)
    tracing.CURRENT.set(trace)  # the tasks made below see it
    registering = asyncio.create_task(register(stub, env, trace), name="slipway-register")
    await asyncio.wait({registering, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not registering.done():
        registering.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await registering
        log.warning("stopping: told to stop before the build started")
        return EXIT_OK
    try:
        pack = registering.result()
    except ManagerUnreachable as exc:
        log.error("could not register: %s", exc)
        return EXIT_UNREACHABLE
    log.info("registered; building %s", pack.repository)
    reporter = Reporter(stub, pack.job_jwt, retry_window=env.retry_window, trace=trace)
    build = asyncio.create_task(run(pack, env, reporter), name="slipway-build")
    beat = asyncio.create_task(heartbeat(stub, pack.job_jwt, env), name="slipway-heartbeat")
    # the manager refused a call of the build: its attempt was ended (a cut or a pause
    # outlasted HEARTBEAT_EXPIRY) and may run again elsewhere
    ended = asyncio.create_task(reporter.ended.wait(), name="slipway-attempt-ended")
    try:
        await asyncio.wait({build, beat, stopped, ended},
                           return_when=asyncio.FIRST_COMPLETED)
        if not build.done() and reporter.end_reported and not stopped.done():
            # the manager has the build's end and now answers heartbeats with false;
            # the build is only removing its images and files: let it
            await asyncio.wait({build, stopped}, timeout=CLEANUP_LIMIT_S,
                               return_when=asyncio.FIRST_COMPLETED)
        if build.done():
            return await _finished(build, reporter)
        if stopped.done():
            log.warning("stopping: told to stop by a signal; ending the build")
            await _end(build)
            return EXIT_OK
        if ended.done():
            log.warning("stopping: %s; ending the build", reporter.ended_reason)
            await _end(build)
            return EXIT_OK
        return await _stopped(beat, build)
    finally:
        for task in (build, beat, ended):
            task.cancel()
        await asyncio.gather(build, beat, ended, return_exceptions=True)
        # a stopped worker does not wait long on a manager that may be gone
        limit = REPORTER_CLOSE_LIMIT_S if stopped.done() else None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                await reporter.close()


async def _finished(build: asyncio.Task[None], reporter: Reporter) -> int:
    try:
        build.result()
    except ManagerUnreachable as exc:
        log.error("%s", exc)
        return EXIT_UNREACHABLE
    except StopRequested as exc:  # a call refused: the attempt was ended
        log.warning("stopping: %s", exc)
        return EXIT_OK
    except Exception as exc:
        # the worker's own trouble (runtime missing, disk full): not the user's error, so
        # no ERROR phase; the manager sees the worker gone and retries the build
        log.exception("the worker failed")
        with contextlib.suppress(Exception):
            await reporter.log_error(reporter.mask(f"internal worker error: {exc}"))
            async with asyncio.timeout(10):
                await reporter.flush()
        return EXIT_INTERNAL
    log.info("build finished and reported")
    return EXIT_OK


async def _end(build: asyncio.Task[None]) -> None:
    build.cancel()  # ends the runtime's process group; the build cleans up after itself
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await build


async def _stopped(beat: asyncio.Task[None], build: asyncio.Task[None]) -> int:
    await _end(build)
    try:
        beat.result()
    except StopRequested as exc:
        log.warning("stopping: %s", exc)
        return EXIT_OK
    except ManagerUnreachable as exc:
        log.error("stopping: %s", exc)
        return EXIT_UNREACHABLE
    return EXIT_INTERNAL
