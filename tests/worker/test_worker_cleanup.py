"""A build killed mid-step or mid-COMMIT leaves buildah working containers and a
half-tagged image (issue 24: two containers and an image with 1,328 of 3,000 tags); the
worker's clean-up removes them in a few calls, whatever the tag count, and touches
nothing of other builds. Real podman and buildah; the unit tests need neither."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from support.images import host_images

from slipway.worker.dockerfile import has_stage_of_only_from
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.runtimes import make_runtime
from slipway.worker.runtimes.base import BuildSpec, Runtime
from slipway.worker.runtimes.leftovers import (
    LocalImage,
    marked_containers,
    not_kept,
    plan_removal,
)

SAFETY_LIMIT_S = 120.0  # guards against a hang; not a timing assertion


def test_an_image_only_this_build_named_is_removed_once_by_id() -> None:
    ours = [f"reg/app:t{n}" for n in range(300)]
    images = [
        LocalImage("a" * 64, tuple(ours[:128])),  # half-tagged by a killed COMMIT
        LocalImage("b" * 64, ("reg/app:t5", "reg/other:1")),  # another build's too
        LocalImage("c" * 64, ("localhost/base:latest",)),
        LocalImage("d" * 64, ()),  # a step image of this build, by its short ID
        LocalImage("e" * 64, ()),  # another, as buildah prints it: `--> eeeeeeeeeee`
    ]
    removal = plan_removal(images, [*ours, "d" * 12, "e" * 11])
    assert removal.delete == ["a" * 64, "d" * 64, "e" * 64]
    assert removal.untag == {"b" * 64: ["reg/app:t5"]}


def test_a_base_image_whose_id_the_build_printed_stays() -> None:
    """A Dockerfile of only `FROM localhost/base:latest` prints the base's ID as the image
    it committed (`--> ae2169ab78c`): the base keeps its name and its image; the build's
    tags on it go."""
    base = LocalImage("f" * 64, ("localhost/base:latest", "reg/app:v1"))
    unnamed_base = LocalImage("9" * 64, ("localhost/other:1",))
    removal = plan_removal([base, unnamed_base], ["reg/app:v1", "f" * 11, "9" * 12])
    assert removal.delete == []
    assert removal.untag == {"f" * 64: ["reg/app:v1"]}



def test_a_local_base_the_build_used_only_loses_the_builds_names() -> None:
    """`FROM localhost/list` alone: the image the build names is the list's image for
    the host, which has no name of its own when a multi-platform build made the list."""
    instance = LocalImage("7" * 64, ("reg/app:v1",))
    step = LocalImage("8" * 64, ())
    removal = plan_removal([instance, step], ["reg/app:v1", "7" * 11, "8" * 12],
                           keep={"sha256:" + "7" * 64})
    assert removal.delete == ["8" * 64]
    assert removal.untag == {"7" * 64: ["reg/app:v1"]}
    # when the host's images cannot be listed, the names go one by one: not its ID
    assert not_kept(["reg/app:v1", "7" * 11, "8" * 12], ["sha256:" + "7" * 64]) == [
        "reg/app:v1", "8" * 12]


@pytest.mark.parametrize(("dockerfile", "only_from"), [
    ("FROM localhost/list\n", True),
    ("ARG BASE=localhost/list\nFROM $BASE\nARG LATE\n", True),
    ("FROM localhost/list AS base\nFROM base\nRUN true\n", True),
    ("FROM localhost/base\nRUN true\n", False),
    ("FROM localhost/base\nLABEL a=b\n", False),
    ("FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /x /x\n", False),
])
def test_a_stage_of_only_from_is_found(dockerfile: str, only_from: bool) -> None:
    assert has_stage_of_only_from(dockerfile) is only_from


def _containers_cli(*args: str) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _images_named(names: set[str]) -> list[str]:
    return [str(i["Id"]) for i in host_images() if names & set(i.get("Names") or ())]


@pytest.mark.podman
@pytest.mark.parametrize("runtime_name", ["podman", "buildah"])
async def test_clean_up_after_a_killed_build_removes_its_containers_and_many_tagged_image(
    tmp_path: Path, base_image: str, runtime_name: str
) -> None:
    marker_text = f"slipway-test-{uuid.uuid4().hex[:12]}"
    work = tmp_path / f"slipway-build-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo {marker_text} && sleep 3601\n")
    env = WorkerEnvironment(token="t", server="127.0.0.1:1", container_runtime=runtime_name)

    async def ignore(line: str) -> None:
        return None

    runtime = make_runtime(env, work, ignore)
    tags = [f"localhost/slipway-test-cleanup/{work.name}:t{n}" for n in range(100)]
    spec = BuildSpec(context_dir=context, dockerfile=context / "Dockerfile", tags=tags)
    build = asyncio.create_task(runtime.build(spec))
    step = await _wait_for_process(marker_text)
    # killed without a chance to clean up, as by SIGKILL mid-COMMIT: its working container
    # stays; then the image it was tagging, with this build's names only
    os.killpg(os.getpgid(step), signal.SIGKILL)
    runtime_pid = _runtime_process(work)
    if runtime_pid is not None:
        os.killpg(runtime_pid, signal.SIGKILL)
    build.cancel()
    await asyncio.gather(build, return_exceptions=True)
    ours_before = _marked(runtime)
    assert ours_before, "the killed build left no working container to clean up"
    try:
        subprocess.run(["buildah", "commit", "-q", ours_before[0], tags[0]], check=True,
                       capture_output=True)
        subprocess.run(["podman", "tag", tags[0], *tags[1:]], check=True)

        await runtime.remove_working_containers()
        await runtime.remove_built(tags)

        assert _marked(runtime) == []
        assert _images_named(set(tags)) == []
    finally:  # whatever the outcome, nothing of the test stays on the shared host
        subprocess.run(["buildah", "rm", *_marked(runtime)], capture_output=True)
        subprocess.run(["podman", "rmi", "--force", *_images_named(set(tags))],
                       capture_output=True)
    assert subprocess.run(["podman", "image", "exists", base_image]).returncode == 0


def _marked(runtime: Runtime) -> list[str]:
    root, _, driver = _containers_cli(
        "info", "--format", "{{.Store.GraphRoot}}|{{.Store.GraphDriverName}}"
    ).strip().partition("|")
    ids = _containers_cli("ps", "--all", "--external", "--no-trunc",
                          "--format", "{{.ID}}").split()
    return marked_containers(Path(root) / f"{driver}-containers", ids,
                             runtime.build_marker)


async def _wait_for_process(text: str) -> int:
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    command = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if text.encode() in command:
                    return int(entry)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no process ran {text}")


def _runtime_process(work: Path) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(work).encode() in command and b"--iidfile" in command:
                return int(entry)
    return None


@pytest.mark.podman
async def test_a_build_cancelled_in_commit_leaves_nothing(
    tmp_path: Path, base_image: str
) -> None:
    """400 tags keep podman in COMMIT for seconds (it adds them one at a time): the
    build is cancelled there, as the worker cancels it when told to stop."""
    work = tmp_path / f"slipway-build-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_image}\nRUN true\n")
    committing = asyncio.Event()

    async def watch(line: str) -> None:
        if line.startswith("COMMIT"):
            committing.set()

    env = WorkerEnvironment(token="t", server="127.0.0.1:1", container_runtime="podman")
    runtime = make_runtime(env, work, watch)
    tags = [f"localhost/slipway-test-commit/{work.name}:t{n}" for n in range(400)]
    spec = BuildSpec(context_dir=context, dockerfile=context / "Dockerfile", tags=tags)
    build = asyncio.create_task(runtime.build(spec, watch))
    try:
        await asyncio.wait_for(committing.wait(), SAFETY_LIMIT_S)
        build.cancel()
        await asyncio.gather(build, return_exceptions=True)
        assert build.cancelled(), "the build finished before it was cancelled"
        left = _marked(runtime)
        assert left, "the runtime, killed in COMMIT, left no working container"

        await runtime.remove_working_containers()
        await runtime.remove_built(tags)

        assert _marked(runtime) == []
        assert _images_named(set(tags)) == []
    finally:
        if not build.done():
            build.cancel()
            await asyncio.gather(build, return_exceptions=True)
        subprocess.run(["buildah", "rm", *_marked(runtime)], capture_output=True)
        if leftover := _images_named(set(tags)):
            subprocess.run(["podman", "rmi", "--force", *leftover], capture_output=True)
