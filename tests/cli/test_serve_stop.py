"""Stopping `slipway serve` during a real build: SIGTERM stops the worker and gives the
build back to the queue at once (it does not wait for the build), a second signal forces
the stop without a traceback, and nothing of the build is left either way. A restarted
server numbers the build's attempts and records how each ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.build_tree import (
    BuildTree,
    assert_no_process_or_directory_left,
    assert_nothing_left,
    long_run,
    new_marker,
    remove_leftover_containers,
    running_build,
)
from support.registry import Registry
from support.serve_process import ServeProcess
from support.server import BuildApi

from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore

pytestmark = pytest.mark.podman


def _serve(tmp_path: Path, registry: Registry) -> ServeProcess:
    return ServeProcess(tmp_path, {"SERVER_HOSTNAME": registry.host,
                                   "INSECURE_REGISTRIES": [registry.host]})


async def _attempts(api: BuildApi, build_id: str) -> list[dict[str, Any]]:
    response = await api.api.get(f"/api/v1/repository/demo/long/build/{build_id}")
    return list(response.json()["attempts"])


async def _running(api: BuildApi, base_image: str, marker: str,
                   build_id: str | None = None) -> tuple[str, BuildTree]:
    """Start the long build (or wait for `build_id`'s next attempt) until its RUN runs."""
    if build_id is None:
        file_id = await api.upload_context({"Dockerfile": long_run(base_image, marker)})
        build_id = str((await api.start_build("demo", "long", file_id=file_id))["id"])
    await running_build(marker, build_id)  # the RUN step runs: its worker is recorded
    running = [a for a in await _attempts(api, build_id) if "ended" not in a]
    assert len(running) == 1, running
    return build_id, await running_build(marker, build_id, int(running[0]["worker_id"]))


async def _follow(api: BuildApi, build_id: str) -> list[str]:
    """The messages of the live log until the server ends the stream."""
    messages = []
    path = f"/api/v1/repository/demo/long/build/{build_id}/logs/stream"
    with contextlib.suppress(httpx.TransportError):
        async with api.api.stream("GET", path, timeout=httpx.Timeout(30, read=None)) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    messages.append(str(json.loads(line[6:]).get("message", "")))
    return messages


async def test_sigterm_stops_the_worker_and_gives_the_build_back_at_once(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    marker = new_marker()
    serve = _serve(tmp_path, registry)
    serve.start()
    try:
        async with serve.api() as api:
            build_id, tree = await _running(api, base_image, marker)
            # a follower of the live log (as `slipway build` is) does not hold the stop up
            follower = asyncio.ensure_future(_follow(api, build_id))
            await asyncio.sleep(0.5)
            serve.send(signal.SIGTERM)
            assert await serve.exit_code() == 0, serve.output()
            followed = await asyncio.wait_for(follower, 60)
    finally:
        serve.kill()
    assert any("Build manager shutting down" in m for m in followed), followed
    output = serve.output()
    assert "stopping (SIGTERM): 1 running build goes back to the queue" in output
    assert "Traceback" not in output
    await assert_nothing_left(tree)
    store = await SqlStore(f"sqlite:///{tmp_path}/data/slipway.db").open()
    try:
        record = await store.builds.get(build_id)
        item = await store.queue.get_for_build(build_id)
    finally:
        await store.close()
    assert record is not None and record.phase is Phase.WAITING
    assert item is not None and item.retries_remaining == 3  # the attempt was given back
    assert record.retries_remaining == 3
    [attempt] = record.attempts
    assert (attempt.attempt, attempt.outcome, attempt.counted) == (1, "manager_shutdown", False)
    assert attempt.ended is not None


async def test_a_second_signal_forces_a_clean_stop_and_a_restart_numbers_the_attempts(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    marker = new_marker()
    serve = _serve(tmp_path, registry)
    serve.start()
    try:
        async with serve.api() as api:
            build_id, tree = await _running(api, base_image, marker)
        serve.send(signal.SIGINT)
        await serve.wait_output("stopping (SIGINT)")
        serve.send(signal.SIGINT)
        assert await serve.exit_code() == 0, serve.output()
        output = serve.output()
        assert "forced stop (SIGINT)" in output
        assert "Traceback" not in output and "CancelledError" not in output
        # the worker was killed at once: podman may leave its working container, as
        # docs/operations.md says of a forced stop; no process or file of the build stays
        await assert_no_process_or_directory_left(tree)
        remove_leftover_containers(tree)

        serve.start()  # the same data directory and addresses
        async with serve.api() as api:
            _, tree = await _running(api, base_image, marker, build_id)
            cancel = await api.api.delete(f"/api/v1/repository/demo/long/build/{build_id}")
            assert cancel.status_code == 201, cancel.text
            final = await api.wait_final("demo", "long", build_id)
            assert final["phase"] == "cancelled"
            messages = [e["message"] for e in await api.logs("demo", "long", build_id)]
            attempts = await _attempts(api, build_id)
        await assert_nothing_left(tree)
        serve.send(signal.SIGTERM)
        assert await serve.exit_code() == 0, serve.output()
    finally:
        serve.kill()
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, "manager_shutdown"), (2, "cancelled")]
    assert all("ended" in a for a in attempts)
    assert attempts[0]["counted"] is False and "counted" not in attempts[1]
    assert "Attempt 1 of 3: worker started on executor local" in messages
    assert "Attempt 2 (try 1 of 3): worker started on executor local" in messages
