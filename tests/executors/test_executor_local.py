"""The local executor: a worker that reported its build's end may finish cleaning up; any
other stop ends it at once. With the default command a standby worker waits for the next
build, which then runs on it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from support.fake_manager import FakeManager, serve_manager
from support.fileserver import serve_files
from support.manager_harness import Harness
from support.processes import process_alive

from slipway.executors.base import WorkerSpec
from slipway.executors.local.executor import LocalExecutor
from slipway.protocol import buildman_pb2 as pb

TOKEN = "registration-token-standby"

# a worker that takes a second to remove its leftovers, then says so
SLOW_CLEANUP = (
    "import sys, time\n"
    "time.sleep(1.0)\n"
    "open(sys.argv[1], 'w').write('cleaned up')\n"
)


def _executor(tmp_path: Path, marker: Path) -> LocalExecutor:
    script = tmp_path / "worker.py"
    script.write_text(SLOW_CLEANUP)
    harness = Harness(tmp_path, manager={"EXECUTORS": [{
        "EXECUTOR": "local", "BUILDER_BINARY_LOCATION": f"{sys.executable} {script} {marker}",
    }]})
    return LocalExecutor(harness.executor_configs()[0], "m")


def _spec() -> WorkerSpec:
    return WorkerSpec(build_id="b", job_id="j", namespace="ns", registration_token="t",
                      manager_address="127.0.0.1:1", environment={}, manager_id="m")


async def test_a_worker_that_reported_the_end_finishes_its_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    executor = _executor(tmp_path, marker)
    worker_id = await executor.start_worker(_spec())
    await executor.release_worker(worker_id)
    assert marker.read_text() == "cleaned up"
    assert await executor.running_count() == 0


async def test_stopping_a_worker_does_not_wait_for_it(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    executor = _executor(tmp_path, marker)
    worker_id = await executor.start_worker(_spec())
    await executor.stop_worker(worker_id)
    assert not marker.exists()
    assert await executor.running_count() == 0


# -- the standby worker --------------------------------------------------------------------
def _default_executor(tmp_path: Path) -> LocalExecutor:
    harness = Harness(tmp_path, manager={"EXECUTORS": [{"EXECUTOR": "local"}]})
    return LocalExecutor(harness.executor_configs()[0], "m", log_dir=tmp_path / "workers")


async def _standby_ready(executor: LocalExecutor) -> int:
    for _ in range(500):
        if executor.standby_pid is not None:
            return executor.standby_pid
        await asyncio.sleep(0.01)
    raise AssertionError("no standby worker was started")


def _worker_spec(server: str) -> WorkerSpec:
    environment = {"TOKEN": TOKEN, "SERVER": server, "BUILD_UUID": "b-standby",
                   "INSECURE": "true", "CONTAINER_RUNTIME": "buildah"}
    return WorkerSpec(build_id="b-standby", job_id="j1", namespace="ns", registration_token=TOKEN,
                      manager_address=server, environment=environment, manager_id="m")


async def _wait_exit(pid: int) -> None:
    for _ in range(3000):
        if not process_alive(pid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"worker {pid} still running")


async def test_a_build_runs_on_the_standby_worker_and_a_new_one_waits(tmp_path: Path) -> None:
    executor = _default_executor(tmp_path)
    await executor.open()
    try:
        standby = await _standby_ready(executor)
        assert await executor.running_count() == 0  # waiting for a build is not running one
        with serve_files({}) as files:
            manager = FakeManager(pb.BuildPack(job_jwt="job-jwt-standby", repository="ns/app",
                                               package_url=f"{files}/missing"), TOKEN)
            async with serve_manager(manager) as server:
                worker_id = await executor.start_worker(_worker_spec(server))
                assert int(worker_id) == standby
                await _wait_exit(standby)
        assert manager.rec.registrations == [TOKEN]
        assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]
        log_text = (tmp_path / "workers" / "worker-j1.log").read_text()
        assert "worker for build b-standby" in log_text
        assert TOKEN not in log_text
        assert await _standby_ready(executor) != standby
    finally:
        await executor.close()
    assert executor.standby_pid is None


async def test_a_dead_standby_is_replaced_by_a_fresh_worker(tmp_path: Path) -> None:
    executor = _default_executor(tmp_path)
    await executor.open()
    try:
        standby = await _standby_ready(executor)
        os.kill(standby, signal.SIGKILL)
        await _wait_exit(standby)
        worker_id = await executor.start_worker(_worker_spec("127.0.0.1:1"))
        assert int(worker_id) != standby
        assert await executor.running_count() == 1
        await executor.stop_worker(worker_id)
    finally:
        await executor.close()


async def test_closing_ends_the_standby(tmp_path: Path) -> None:
    executor = _default_executor(tmp_path)
    await executor.open()
    standby = await _standby_ready(executor)
    await executor.close()
    assert not process_alive(standby)


async def test_a_custom_worker_command_gets_no_standby(tmp_path: Path) -> None:
    executor = _executor(tmp_path, tmp_path / "cleaned")
    await executor.open()
    await asyncio.sleep(0.2)
    assert executor.standby_pid is None
    await executor.close()
