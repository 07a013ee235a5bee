"""However a running build is stopped (cancel, lost heartbeat, MACHINE_MAX_TIME, its worker
killed), nothing of it is left: no podman, buildah, conmon or RUN process, no working
directory. Real podman builds through the embedded server and the `local` executor."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from support.build_tree import (
    SAFETY_LIMIT_S,
    assert_nothing_left,
    long_run,
    new_marker,
    running_build,
    step_command_running,
)
from support.registry import Registry
from support.server import RunningServer, running_server

pytestmark = pytest.mark.podman


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _config(registry: Registry, **manager: Any) -> dict[str, Any]:
    return {
        "SERVER_HOSTNAME": registry.host,
        "INSECURE_REGISTRIES": [registry.host],
        # a retried build waits: its next attempt would run the same marked RUN step
        "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [{"EXECUTOR": "local"}],
                                        "RETRY_AFTER": 3600, **manager}],
    }


async def _start_long_build(slipway: RunningServer, base_image: str, marker: str,
                            **body: Any) -> tuple[dict[str, Any], int]:
    file_id = await slipway.upload_context({"Dockerfile": long_run(base_image, marker)})
    build = await slipway.start_build("demo", "long", file_id=file_id, **body)
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while time.monotonic() < deadline:  # recorded before it registers, so before its RUN
        status = await slipway.api.get(f"/api/v1/repository/demo/long/build/{build['id']}")
        attempts = status.json()["attempts"]
        if attempts:
            return build, int(attempts[-1]["worker_id"])
        await asyncio.sleep(0.1)
    raise AssertionError("no worker was started")


async def _final(slipway: RunningServer, build_id: str) -> dict[str, Any]:
    return await slipway.wait_final("demo", "long", build_id)


async def test_cancel_ends_every_process_of_the_build_and_removes_its_directory(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    marker = new_marker()
    async with running_server(tmp_path, **_config(registry)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker)
        tree = await running_build(marker, build["id"], worker)
        assert len(tree.alive()) >= 3  # podman, buildah's helpers, the RUN step
        cancel = await slipway.api.delete(f"/api/v1/repository/demo/long/build/{build['id']}")
        assert cancel.status_code == 201, cancel.text
        assert (await _final(slipway, build["id"]))["phase"] == "cancelled"
        await assert_nothing_left(tree)


async def test_cancel_of_a_build_with_many_tags_leaves_no_image_or_working_container(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    """100 tags (the API's limit): the worker's clean-up removes the build's working
    containers and its images in a few calls, within the executor's stop grace."""
    marker = new_marker()
    tags = [f"t{n}" for n in range(100)]
    async with running_server(tmp_path, **_config(registry)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker,
                                                docker_tags=tags)
        tree = await running_build(marker, build["id"], worker)
        tree.image_names = {f"{registry.host}/demo/long:{tag}" for tag in tags}
        assert tree.leftover_containers() != []  # the RUN step's, found by its marker
        cancel = await slipway.api.delete(f"/api/v1/repository/demo/long/build/{build['id']}")
        assert cancel.status_code == 201, cancel.text
        assert (await _final(slipway, build["id"]))["phase"] == "cancelled"
        await assert_nothing_left(tree)


async def test_a_lost_heartbeat_ends_the_build_even_when_its_worker_cannot_help(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    """The worker is frozen (SIGSTOP): it sends no heartbeat and cannot handle SIGTERM;
    the executor ends its processes by their session."""
    marker = new_marker()
    async with running_server(tmp_path, **_config(registry, HEARTBEAT_EXPIRY=3)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker)
        tree = await running_build(marker, build["id"], worker)
        os.kill(worker, signal.SIGSTOP)
        try:
            await assert_nothing_left(tree)
        finally:
            if tree.alive():
                os.kill(worker, signal.SIGCONT)
        status = await slipway.api.get(f"/api/v1/repository/demo/long/build/{build['id']}")
        body = status.json()
        assert [a["outcome"] for a in body["attempts"]] == ["heartbeat_lost"]
        assert body["phase"] == "waiting"  # retried, after RETRY_AFTER


async def test_a_killed_worker_leaves_nothing_behind(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    """SIGKILL (the OOM killer, say): the worker cannot clean up; the executor does."""
    marker = new_marker()
    async with running_server(tmp_path, **_config(registry)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker)
        tree = await running_build(marker, build["id"], worker)
        await step_command_running(tree, "sleep 3601")
        os.kill(worker, signal.SIGKILL)
        await assert_nothing_left(tree)


async def test_a_worker_killed_with_its_runtime_leaves_no_working_container(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    """Every process of the build SIGKILLed at once, the runtime's too: nothing of the
    build is left to remove the RUN step's working container; the executor does."""
    marker = new_marker()
    async with running_server(tmp_path, **_config(registry)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker)
        tree = await running_build(marker, build["id"], worker)
        await step_command_running(tree, "sleep 3601")
        tree.kill_all()
        await assert_nothing_left(tree)


async def test_machine_max_time_ends_the_build_and_its_processes(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    marker = new_marker()
    async with running_server(tmp_path, **_config(registry, MACHINE_MAX_TIME=30)) as slipway:
        build, worker = await _start_long_build(slipway, base_image, marker)
        tree = await running_build(marker, build["id"], worker)
        final = await _final(slipway, build["id"])
        assert final["phase"] in ("internalerror", "expired")
        assert "MACHINE_MAX_TIME" in final["error"]
        await assert_nothing_left(tree)
