"""The local executor: a worker that reported its build's end may finish cleaning up; any
other stop ends it at once."""

from __future__ import annotations

import sys
from pathlib import Path

from support.manager_harness import Harness

from slipway.executors.base import WorkerSpec
from slipway.executors.local import LocalExecutor

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
