"""tests/support/manager_process.py, with workers that can go silent as if their machine
died: a worker whose job id names a file in SLIPWAY_TEST_SILENCE_DIR makes no call from
the moment the file appears (no heartbeat, no phase, no log line: each new call hangs,
never reaching a manager), until the manager stops it.

    python tests/support/silenceable_manager_process.py CONFIG.json STATE_DIR

`silence_cluster` points a support.manager_cluster.Cluster at this script.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `support`

from slipway.executors.base import WorkerSpec
from support import manager_process as base

if TYPE_CHECKING:
    import pytest

SCRIPT = Path(__file__)
SILENCE_DIR = "SLIPWAY_TEST_SILENCE_DIR"


def silence_cluster(monkeypatch: pytest.MonkeyPatch, silence_dir: Path) -> None:
    """Clusters started from now on in this test run their managers with this script."""
    from support import manager_cluster  # (the test's side only)

    silence_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(manager_cluster, "SCRIPT", SCRIPT)
    monkeypatch.setenv(SILENCE_DIR, str(silence_dir))


def silence(silence_dir: Path, job_id: str) -> None:
    """The worker of `job_id` makes no call from now on."""
    (silence_dir / job_id).touch()


class _Hang:
    """A call to a manager that never answers (awaited, or read as a stream)."""

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.Event().wait().__await__()

    def __aiter__(self) -> _Hang:
        return self

    async def __anext__(self) -> Any:
        await asyncio.Event().wait()


class _SilentStub:
    def __getattr__(self, name: str) -> Callable[..., _Hang]:
        return lambda *args, **kwargs: _Hang()


class _SilenceableStubs:
    """The worker's way to the managers, cut once its marker file appears."""

    def __init__(self, stubs: base.Stubs, marker: Path) -> None:
        self._stubs = stubs
        self._marker = marker
        self._silent = False

    def any(self) -> Any:
        if not self._marker.exists():
            return self._stubs.any()
        if not self._silent:
            self._silent = True
            logging.getLogger("test.worker").info("worker of job %s went silent",
                                                  self._marker.name)
        return _SilentStub()


class SilenceableRun(base.ProtocolWorkerRun):
    def __init__(self, spec: WorkerSpec, stubs: base.Stubs, state: Path,
                 seconds: float) -> None:
        marker = Path(os.environ[SILENCE_DIR]) / spec.job_id
        super().__init__(spec, _SilenceableStubs(stubs, marker), state, seconds)  # type: ignore[arg-type]


if __name__ == "__main__":
    base.ProtocolWorkerRun = SilenceableRun  # type: ignore[misc]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if os.environ.get("SLIPWAY_TEST_DEBUG"):
        logging.getLogger("slipway.manager").setLevel(logging.DEBUG)
    asyncio.run(base.main(Path(sys.argv[1]), Path(sys.argv[2])))
