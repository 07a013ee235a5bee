"""The `local` executor (Quay's `popen`): the worker runs as a child process of the manager.

It is the embedded default. Each worker gets its own process group so that stopping it
also stops the build tools it started (podman, buildah).

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
import signal
import sys
from pathlib import Path
from typing import Any

from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.executors.local_config import LocalExecutorConfig

log = logging.getLogger("slipway.executors.local")

# a worker gets this long to exit after SIGTERM before the whole group is killed
STOP_GRACE_SECONDS = 0.5
# a worker that reported its build's end gets this long to remove its images and exit
FINISH_GRACE_SECONDS = 60.0


class LocalExecutor(Executor[LocalExecutorConfig]):
    def __init__(
        self, config: LocalExecutorConfig, manager_id: str, *, log_dir: Path | None = None
    ) -> None:
        super().__init__(config, manager_id)
        self._processes: dict[str, asyncio.subprocess.Process] = {}
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
        self._replenish()

    async def start_worker(self, spec: WorkerSpec) -> str:
        process = await self._assign_standby(spec)
        if process is None:
            process = await self._spawn(spec)
        worker_id = str(process.pid)
        self._processes[worker_id] = process
        asyncio.get_running_loop().create_task(self._reap(worker_id, process))
        log.info("started worker pid %s for build %s", worker_id, spec.build_id)
        return worker_id

    async def _spawn(self, spec: WorkerSpec) -> asyncio.subprocess.Process:
        log_path = self._log_path(spec)
        log_file = None if log_path is None else open(log_path, "ab")  # noqa: SIM115
        output: int | Any = asyncio.subprocess.DEVNULL if log_file is None else log_file
        try:
            return await asyncio.create_subprocess_exec(
                *self._command(),
                env={**os.environ, **spec.environment},
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
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:  # the next build starts its worker the usual way, and says why
            log.warning("cannot start a standby worker: %s", exc.strerror)

    async def _assign_standby(self, spec: WorkerSpec) -> asyncio.subprocess.Process | None:
        """The standby, told which build it runs; None when there is none ready."""
        if self._standby_task is not None and not self._standby_task.done():
            return None  # still starting: waiting for it could take longer than a new one
        standby, self._standby = self._standby, None
        if standby is None or standby.returncode is not None or standby.stdin is None:
            return None
        log_path = self._log_path(spec)
        assignment = {"environment": spec.environment,
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
            await asyncio.wait_for(standby.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(standby.pid, signal.SIGKILL)
            await standby.wait()

    async def _reap(self, worker_id: str, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        self._processes.pop(worker_id, None)
        log.info("worker pid %s exited with %s", worker_id, code)
        # not at once when the standby was taken: its start-up would compete for the CPU
        # with the build that just started on it
        self._replenish()

    async def release_worker(self, worker_id: str) -> None:
        """Its images live in this machine's container storage: let it remove them."""
        process = self._processes.get(worker_id)
        if process is not None and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), FINISH_GRACE_SECONDS)
        await self.stop_worker(worker_id)

    async def stop_worker(self, worker_id: str) -> None:
        process = self._processes.get(worker_id)
        if process is None or process.returncode is not None:
            return
        pgid = process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        await process.wait()

    async def running_count(self) -> int:
        return sum(1 for p in self._processes.values() if p.returncode is None)

    async def close(self) -> None:
        self._closed = True
        if self._standby_task is not None:
            await self._standby_task
        standby, self._standby = self._standby, None
        if standby is not None:
            await self._end_standby(standby)
        for worker_id in list(self._processes):
            await self.stop_worker(worker_id)
