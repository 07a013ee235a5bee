"""The `local` executor (Quay's `popen`): the worker runs as a child process of the manager.

It is the embedded default. Each worker gets its own process group so that stopping it
also stops the build tools it started (podman, buildah).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from slipway.executors.base import Executor, ExecutorError, WorkerSpec

log = logging.getLogger("slipway.executors.local")

# a worker gets this long to exit after SIGTERM before the whole group is killed
STOP_GRACE_SECONDS = 0.5
# a worker that reported its build's end gets this long to remove its images and exit
FINISH_GRACE_SECONDS = 60.0


class LocalExecutor(Executor):
    def __init__(self, config: Any, manager_id: str, *, log_dir: Path | None = None) -> None:
        super().__init__(config, manager_id)
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._log_dir = log_dir

    def _command(self) -> list[str]:
        custom = getattr(self.config, "BUILDER_BINARY_LOCATION", None)
        if custom:
            return shlex.split(str(custom))
        return [sys.executable, "-m", "slipway.worker"]

    async def start_worker(self, spec: WorkerSpec) -> str:
        env = {**os.environ, **spec.environment}
        output: int | Any = asyncio.subprocess.DEVNULL
        log_file = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_file = open(self._log_dir / f"worker-{spec.job_id}.log", "ab")  # noqa: SIM115
            output = log_file
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(),
                env=env,
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
        worker_id = str(process.pid)
        self._processes[worker_id] = process
        asyncio.get_running_loop().create_task(self._reap(worker_id, process))
        log.info("started worker pid %s for build %s", worker_id, spec.build_id)
        return worker_id

    async def _reap(self, worker_id: str, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        self._processes.pop(worker_id, None)
        log.info("worker pid %s exited with %s", worker_id, code)

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
        for worker_id in list(self._processes):
            await self.stop_worker(worker_id)
