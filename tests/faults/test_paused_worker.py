"""A worker paused (SIGSTOP) past HEARTBEAT_EXPIRY and resumed (issue 25): its attempt
was ended and the build ran again meanwhile, so every call it makes is refused; it
reports no result, its log lines do not reach the build's log, and it stops its build
and cleans up. The suite's one real-podman case: a real worker process (`python -m
slipway.worker`, as the local executor starts it) building a small image from the local
base, paused during a RUN step that sleeps a few seconds."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from support.build_tree import SAFETY_LIMIT_S, BuildTree, new_marker, running_build
from support.fault_figures import FaultFigures
from support.registry import Registry
from support.server import RunningServer, running_server
from support.stale_calls import stale_calls_refused

pytestmark = pytest.mark.podman

REPOSITORY = ("demo", "paused")


def _config(registry: Registry) -> dict[str, Any]:
    return {
        "SERVER_HOSTNAME": registry.host,
        "INSECURE_REGISTRIES": [registry.host],
        "BUILD_MANAGER": ["ephemeral", {
            # DEBUG: the executor leaves running a worker it is told to stop, as one on a
            # machine it cannot reach; so the paused worker outlives its attempt
            "EXECUTORS": [{"EXECUTOR": "local", "DEBUG": True}],
            "HEARTBEAT_EXPIRY": 4,
            "RETRY_AFTER": 0,
        }],
    }


def _dockerfile(base_image: str, marker: str) -> str:
    """One RUN step of a few seconds to pause the worker in; its last line says which
    attempts got to the end of it."""
    return (f"FROM {base_image}\n"
            f"RUN echo {marker} started && sleep 4 && echo {marker} finished\n")


async def _status(slipway: RunningServer, build_id: str) -> dict[str, Any]:
    namespace, name = REPOSITORY
    response = await slipway.api.get(f"/api/v1/repository/{namespace}/{name}/build/{build_id}")
    return dict(response.json())


async def _until(slipway: RunningServer, build_id: str, what: str,
                 done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while True:
        status = await _status(slipway, build_id)
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {SAFETY_LIMIT_S} s; build {status}")
        await asyncio.sleep(0.1)


async def _exited(pid: int) -> None:
    """Until the process is gone (the executor reaps its workers)."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the resumed worker {pid} did not stop")
        await asyncio.sleep(0.1)


async def _no_process_left(tree: BuildTree) -> None:
    """Until no process of the paused worker's build runs (the executor ends what is left
    of a worker's session once it exits)."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while tree.alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"left running: {tree.alive()}")
        await asyncio.sleep(0.1)


def _worker_logs(tmp_path: Path) -> list[str]:
    return [p.read_text(errors="replace")
            for p in sorted((tmp_path / "data" / "workers").glob("worker-*.log"))]


async def test_a_worker_paused_past_its_expiry_cannot_report_for_its_ended_attempt(
    tmp_path: Path, registry: Registry, base_image: str, monkeypatch: pytest.MonkeyPatch,
    fault_figures: FaultFigures,
) -> None:
    # the workers inherit it: the build that runs on beats well within the short expiry
    monkeypatch.setenv("HEARTBEAT_INTERVAL", "0.5")
    marker = new_marker()
    namespace, name = REPOSITORY
    refused_before = stale_calls_refused()
    build_id = ""
    try:
        async with running_server(tmp_path, **_config(registry)) as slipway:
            file_id = await slipway.upload_context(
                {"Dockerfile": _dockerfile(base_image, marker)})
            # no_cache: the retry runs the step itself, not the layer the paused worker's
            # podman committed meanwhile
            build_id = (await slipway.start_build(namespace, name, file_id=file_id,
                                                  no_cache=True))["id"]
            started = await _until(slipway, build_id, "a worker started",
                                   lambda s: s["attempts"])
            paused = int(started["attempts"][0]["worker_id"])
            tree = await running_build(marker, build_id, paused)
            os.kill(paused, signal.SIGSTOP)
            try:
                await _until(slipway, build_id, "the paused worker's attempt ended",
                             lambda s: s["attempts"][0].get("outcome"))
                final = await slipway.wait_final(namespace, name, build_id)
                log_at_completion = await slipway.logs(namespace, name, build_id)
            finally:
                os.kill(paused, signal.SIGCONT)
            await _exited(paused)
            log_after = await slipway.logs(namespace, name, build_id)
            status = await _status(slipway, build_id)

        assert final["phase"] == "complete"
        assert [a["outcome"] for a in status["attempts"]] == ["heartbeat_lost", "completed"]
        assert status["phase"] == "complete" and status["error"] is None
        # nothing of the resumed worker reached the log: its RUN step's end was the retry's
        assert log_after == log_at_completion
        finished = [e for e in log_after if e.get("message") == f"{marker} finished"]
        assert len(finished) == 1, [e for e in log_after if marker in e.get("message", "")]
        # the resumed worker heard it was ended, stopped its build and cleaned up
        stopped = [line for text in _worker_logs(tmp_path) for line in text.splitlines()
                   if "stopping:" in line]
        assert stopped, "the resumed worker did not say why it stopped"
        await _no_process_left(tree)
        assert tree.leftover_containers() == []
        refused = stale_calls_refused() - refused_before
        assert refused >= 1
        fault_figures(dict(accepted=1, complete=1, attempts=len(status["attempts"]),
                      attempts_lost=1, stale_calls_refused=refused,
                      finished_lines_in_log=len(finished)))
        print(f"the resumed worker: {stopped[0].strip()}")
    finally:
        # DEBUG keeps the workers' directories
        pattern = f"slipway-worker-{build_id}-*"
        for directory in Path(tempfile.gettempdir()).glob(pattern) if build_id else ():
            shutil.rmtree(directory, ignore_errors=True)
