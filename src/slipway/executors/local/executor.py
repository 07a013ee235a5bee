"""The `local` executor (Quay's `popen`): the worker runs as a child process of the manager.

It is the embedded default. It does not count on the worker to clean up after itself:
each worker leads its own session, which every process of its build stays in (see
slipway.process_tree), and gets a private directory as WORK_DIR and TMPDIR. A stop sends
the worker SIGTERM (it ends its build's processes and removes its files), and after a
grace period kills what is left of the session; whenever a worker exits, however it
ended, whatever is left of its session is killed, the working containers of a build it
did not end itself are removed (left_containers.py), and its directory removed.

A manager killed with kill -9 removes nothing: its workers' directories stay. Each is
held (a shared flock on its lock file) by the executor that made it and by its worker;
an executor that starts removes every TMPDIR/slipway-worker-* directory no live process
holds, whichever manager on the host made it, and keeps those of live workers.

With the default command it keeps one worker on standby: started ahead, imports done,
waiting on stdin for the build it will run. A build then starts without waiting for
Python's start-up. A standby serves one build only, like any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.executors.local.config import LocalExecutorConfig
from slipway.executors.local.left_containers import remove_left_containers
from slipway.process_tree import (
    end_processes,
    hold_directory,
    remove_abandoned_directories,
    session_members,
)

log = logging.getLogger("slipway.executors.local.executor")

# a worker gets this long to exit after SIGTERM (it ends its build, which takes a second
# or two, and removes its images and files) before its session is killed
STOP_GRACE_SECONDS = 10.0
# a standby worker (no build yet) gets this long to exit at the end of its input
STANDBY_GRACE_SECONDS = 0.5
# a worker's processes ended from outside (it left them, or it did not stop): the RUN step
# gets this long on SIGTERM, then
# the runtime this long to remove its working container (see process_tree.end_processes)
LEFTOVER_TERM_GRACE = 2.0
LEFTOVER_CLEANUP_GRACE = 2.0
# a worker that reported its build's end gets this long to remove its images and exit
FINISH_GRACE_SECONDS = 60.0
# each worker's private directory: TMPDIR/slipway-worker-<build id>-<random>
WORKER_DIRECTORY_PREFIX = "slipway-worker-"


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    directory: Path
    lock_fd: int  # the executor's hold on the directory (process_tree.hold_directory)
    environment: dict[str, str]  # what it was started with (its runtime, its storage)
    # set once it has exited, the rest of its session is gone and its directory removed
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class LocalExecutor(Executor[LocalExecutorConfig]):
    def __init__(
        self, config: LocalExecutorConfig, manager_id: str, *, log_dir: Path | None = None,
        warm: Collection[str] = (),
    ) -> None:
        """`warm`: what a standby imports ahead besides the worker ("signing", "sbom":
        when this manager signs its builds)."""
        super().__init__(config, manager_id)
        self._warm = [f"--warm-{what}" for what in warm]
        self._workers: dict[str, _Worker] = {}
        self._hurry = asyncio.Event()
        self._log_dir = log_dir
        self._custom = shlex.split(config.BUILDER_BINARY_LOCATION or "")
        self._standby: asyncio.subprocess.Process | None = None
        self._standby_task: asyncio.Task[None] | None = None
        self._closed = False

    def _command(self) -> list[str]:
        return self._custom or [sys.executable, "-m", "slipway.worker"]

    def _log_path(self, spec: WorkerSpec) -> Path | None:
        if self._log_dir is None:
            return None
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir / f"worker-{spec.job_id}.log"

    async def open(self) -> None:
        if not self.config.DEBUG:  # DEBUG keeps workers' directories for a look
            removed = await asyncio.to_thread(
                remove_abandoned_directories, tempfile.gettempdir(), WORKER_DIRECTORY_PREFIX)
            if removed:
                log.info("removed %d directories of workers no longer running: %s",
                         len(removed), ", ".join(removed))
        self._replenish()

    async def start_worker(self, spec: WorkerSpec) -> str:
        directory = Path(await asyncio.to_thread(
            tempfile.mkdtemp, prefix=f"{WORKER_DIRECTORY_PREFIX}{spec.build_id}-"))
        # held until the worker is gone and the directory removed; the worker holds it
        # too, so a directory outlives neither (a manager killed with kill -9 leaves it
        # to the next executor's open(), once its worker has ended as well)
        lock_fd = hold_directory(directory)
        # the build's files (WORK_DIR) and the runtime's temporary files (TMPDIR) go in
        # the worker's own directory, removed once the worker is gone
        environment = {**spec.environment, "WORK_DIR": str(directory), "TMPDIR": str(directory)}
        try:
            process = await self._assign_standby(spec, environment)
            if process is None:
                process = await self._spawn(spec, environment)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, directory, True)
            os.close(lock_fd)
            raise
        worker_id = str(process.pid)
        worker = _Worker(process, directory, lock_fd, environment)
        self._workers[worker_id] = worker
        asyncio.get_running_loop().create_task(self._reap(worker_id, worker))
        log.info("started worker pid %s for build %s", worker_id, spec.build_id)
        return worker_id

    async def _spawn(self, spec: WorkerSpec,
                     environment: dict[str, str]) -> asyncio.subprocess.Process:
        log_path = self._log_path(spec)
        log_file = None if log_path is None else open(log_path, "ab")  # noqa: SIM115
        output: int | Any = asyncio.subprocess.DEVNULL if log_file is None else log_file
        try:
            return await asyncio.create_subprocess_exec(
                *self._command(),
                env={**os.environ, **environment},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        except OSError as exc:
            raise ExecutorError(f"cannot start {self._command()[0]}: {exc.strerror}") from exc
        finally:
            if log_file is not None:
                log_file.close()

    # -- the standby worker ------------------------------------------------------------
    @property
    def standby_pid(self) -> int | None:
        """The process id of the worker waiting for the next build, if one is."""
        standby = self._standby
        return standby.pid if standby is not None and standby.returncode is None else None

    def _replenish(self) -> None:
        """Start the next standby in the background, unless one is ready or starting."""
        if self._custom or self._closed:
            return  # a custom BUILDER_BINARY_LOCATION knows nothing of --standby
        if self._standby_task is not None and not self._standby_task.done():
            return
        if self._standby is not None and self._standby.returncode is None:
            return
        self._standby_task = asyncio.get_running_loop().create_task(self._start_standby())

    async def _start_standby(self) -> None:
        try:
            self._standby = await asyncio.create_subprocess_exec(
                *self._command(),
                "--standby",
                *self._warm,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:  # the next build starts its worker the usual way, and says why
            log.warning("cannot start a standby worker: %s", exc.strerror)

    async def _assign_standby(
        self, spec: WorkerSpec, environment: dict[str, str]
    ) -> asyncio.subprocess.Process | None:
        """The standby, told which build it runs; None when there is none ready."""
        if self._standby_task is not None and not self._standby_task.done():
            return None  # still starting: waiting for it could take longer than a new one
        standby, self._standby = self._standby, None
        if standby is None or standby.returncode is not None or standby.stdin is None:
            return None
        log_path = self._log_path(spec)
        assignment = {"environment": environment,
                      "log_path": None if log_path is None else str(log_path)}
        try:
            standby.stdin.write(json.dumps(assignment).encode() + b"\n")
            await standby.stdin.drain()
            standby.stdin.close()
        except (BrokenPipeError, ConnectionResetError):  # it died waiting
            await self._end_standby(standby)
            return None
        return standby

    async def _end_standby(self, standby: asyncio.subprocess.Process) -> None:
        """End of input tells a standby it is not needed; it exits by itself."""
        if standby.stdin is not None:
            standby.stdin.close()
        try:
            async with asyncio.timeout(STANDBY_GRACE_SECONDS):
                await standby.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(standby.pid, signal.SIGKILL)
            await standby.wait()

    async def _reap(self, worker_id: str, worker: _Worker) -> None:
        """However the worker ended (done, stopped, killed, crashed): nothing of its build
        outlives it."""
        try:
            code = await worker.process.wait()
            log.info("worker pid %s exited with %s", worker_id, code)
            await self._end_session(worker.process.pid)
            if left := await remove_left_containers(worker.directory, worker.environment):
                log.info("worker pid %s left %s: its working containers removed",
                         worker_id, ", ".join(left))
            if self.config.DEBUG:
                log.info("DEBUG is set: keeping %s of worker pid %s", worker.directory, worker_id)
            else:
                await asyncio.to_thread(shutil.rmtree, worker.directory, True)
        finally:
            os.close(worker.lock_fd)
            self._workers.pop(worker_id, None)
            worker.gone.set()
        # not at once when the standby was taken: its start-up would compete for the CPU
        # with the build that just started on it
        self._replenish()

    async def release_worker(self, worker_id: str) -> None:
        """Its images live in this machine's container storage: let it remove them."""
        worker = self._workers.get(worker_id)
        if worker is not None:
            await self._gone_within(worker, FINISH_GRACE_SECONDS)
        await self.stop_worker(worker_id)

    async def stop_worker(self, worker_id: str) -> None:
        """SIGTERM: the worker ends its build and leaves. One that has not left after
        STOP_GRACE_SECONDS is killed with the rest of its session."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGTERM)
            if not await self._gone_within(worker, STOP_GRACE_SECONDS):
                log.warning("worker pid %s did not stop; ending its processes", worker_id)
                await self._end_session(worker.process.pid)
        await worker.gone.wait()

    async def _end_session(self, sid: int) -> None:
        """End a worker's session from outside: its RUN step first, so the runtime can
        still remove its working container; all at once when hurried."""
        hurried = self._hurry.is_set()
        await end_processes(
            lambda: session_members(sid),
            term_grace=0.0 if hurried else LEFTOVER_TERM_GRACE,
            cleanup_grace=0.0 if hurried else LEFTOVER_CLEANUP_GRACE,
        )

    async def _gone_within(self, worker: _Worker, seconds: float) -> bool:
        """Whether the worker is gone within `seconds`; at once False when hurried."""
        gone = asyncio.ensure_future(worker.gone.wait())
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait({gone, hurry}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            hurry.cancel()
        return worker.gone.is_set()

    def hurry(self) -> None:
        """A forced shutdown: from now on workers are killed at once, without grace."""
        self._hurry.set()

    async def running_count(self) -> int:
        return sum(1 for w in self._workers.values() if w.process.returncode is None)

    async def close(self) -> None:
        self._closed = True
        if self._standby_task is not None:
            await self._standby_task
        standby, self._standby = self._standby, None
        if standby is not None:
            await self._end_standby(standby)
        await asyncio.gather(*(self.stop_worker(w) for w in list(self._workers)))
