"""Workers' private directories (TMPDIR/slipway-worker-*) left when a manager and its
worker were killed with kill -9 (issue 24) are removed when a local executor starts on
the host; those of workers still running, of any manager, stay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support.manager_harness import Harness

from slipway.executors.base import WorkerSpec
from slipway.executors.local.executor import LocalExecutor
from slipway.process_tree import DIRECTORY_LOCK

SAFETY_LIMIT_S = 60.0  # guards against a hang; not a timing assertion


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The executors' TMPDIR: this test's own, not the host's shared /tmp."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _executor(tmp_path: Path, command: str = "") -> LocalExecutor:
    executor: dict[str, object] = {"EXECUTOR": "local"}
    if command:
        executor["BUILDER_BINARY_LOCATION"] = command
    harness = Harness(tmp_path, manager={"EXECUTORS": [executor]})
    return LocalExecutor(harness.executor_configs()[0], "m")


async def _real_worker_holding(directory: Path) -> asyncio.subprocess.Process:
    """A slipway worker that runs with WORK_DIR=directory (trying to reach a manager
    that is not there), as one whose manager was killed goes on running."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "slipway.worker", "--standby", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    assert worker.stdin is not None
    environment = {"TOKEN": "t", "SERVER": "127.0.0.1:1", "INSECURE": "true",
                   "RETRY_WINDOW": "120", "WORK_DIR": str(directory)}
    worker.stdin.write(json.dumps({"environment": environment, "log_path": None}).encode()
                       + b"\n")
    await worker.stdin.drain()
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while not _held(directory):  # it takes the lock once it has started
        assert time.monotonic() < deadline, "the worker never held its directory"
        await asyncio.sleep(0.05)
    return worker


def _held(directory: Path) -> bool:
    import fcntl

    fd = os.open(directory / DIRECTORY_LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


async def test_an_executor_starting_removes_only_directories_of_workers_gone(
    tmp_path: Path, temp_root: Path
) -> None:
    # a manager killed with kill -9 whose worker was killed too: nobody holds its directory
    killed = temp_root / "slipway-worker-b1-killed"
    killed.mkdir()
    (killed / "slipway-build-x").mkdir()
    holder = await _real_worker_holding_then_killed(killed)
    # a manager killed with kill -9 whose worker runs on
    orphan = temp_root / "slipway-worker-b2-orphan"
    orphan.mkdir()
    (orphan / DIRECTORY_LOCK).touch()  # its executor's lock file; the lock went with it
    worker = await _real_worker_holding(orphan)
    # a live worker of a manager that runs (here: this process's executor)
    other = _executor(tmp_path, f"{sys.executable} -c 'import time; time.sleep(120)'")
    worker_id = await other.start_worker(WorkerSpec(
        build_id="b3", job_id="j", namespace="ns", registration_token="t",
        manager_address="127.0.0.1:1", environment={}, manager_id="other"))
    running = next(temp_root.glob("slipway-worker-b3-*"))
    # an executor creating its worker's directory this instant (no lock file yet)
    creating = temp_root / "slipway-worker-b4-new"
    creating.mkdir()
    try:
        await _executor(tmp_path).open()
        assert not killed.exists()
        assert orphan.exists() and running.exists() and creating.exists()
    finally:
        for process in (worker, holder):
            if process.returncode is None:
                process.kill()
            await process.wait()
        await other.stop_worker(worker_id)


async def _real_worker_holding_then_killed(directory: Path) -> asyncio.subprocess.Process:
    (directory / DIRECTORY_LOCK).touch()  # its executor's lock file; the lock went with it
    worker = await _real_worker_holding(directory)
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    return worker
