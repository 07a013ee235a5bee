"""The milestones of a build in podman's own output (worker/milestones.py): the build is
under way once its first step is committed (and pushed to the registry cache), before the
last step; the SBOM starts when podman has committed the build's image, before the build
ends (its last cache push, its tags), and the image read then is the one the build
returns, with its last step's files. An SBOM read from a name that then moved to another
image is made again from the build's own image."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from support.images import ensure_debian_image
from support.registry import Registry

from slipway.protocol import buildman_pb2 as pb
from slipway.worker.build import Build
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.milestones import FinalCommit, UnderWay, same_image
from slipway.worker.runtimes import make_runtime
from slipway.worker.runtimes.base import BuildSpec, Runtime

pytestmark = pytest.mark.podman

# the last step adds a Python distribution: only an image read after that commit lists it
DOCKERFILE = """\
FROM {base}
RUN echo {label} > /label
RUN mkdir -p /usr/lib/python3/dist-packages/late_package-1.0.dist-info && \\
    printf 'Name: late-package\\nVersion: 1.0\\n' \\
    > /usr/lib/python3/dist-packages/late_package-1.0.dist-info/METADATA
"""


def podman_runtime(tmp_path: Path, registry: str) -> Runtime:
    env = WorkerEnvironment(token="t", server="127.0.0.1:1", container_runtime="podman",
                            insecure_registries=(registry,))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    async def quiet(line: str) -> None:
        return None

    return make_runtime(env, work, quiet)


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "registry-cache"])
async def test_the_image_is_read_at_its_commit_and_is_the_one_built(
    cache: bool, tmp_path: Path, base_image: str, registry: Registry
) -> None:
    runtime = podman_runtime(tmp_path, registry.host)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base_image, label=uuid.uuid4().hex))
    tag = f"{registry.host}/ns/at-commit:v1"
    spec = BuildSpec(ctx, ctx / "Dockerfile", [tag], insecure=True, keep_layers=cache,
                     cache_repo=f"{registry.host}/ns/at-commit-cache" if cache else "")
    watch = FinalCommit(tag)
    under_way = UnderWay(commit_per_step=cache)
    lines: list[str] = []
    under_way_at: list[int] = []
    committed_at: list[int] = []
    read: list[asyncio.Future[tuple[str, dict[str, bytes]]]] = []

    async def sink(line: str) -> None:
        lines.append(line)
        if under_way.line(line):
            under_way_at.append(len(lines) - 1)
        if watch.line(line):  # what worker/build.py does: start reading, do not wait
            committed_at.append(len(lines) - 1)
            read.append(asyncio.ensure_future(runtime.mounted_files(tag)))

    try:
        image_id = await runtime.build(spec, sink)
        assert len(read) == 1, lines
        # under way before the last step: with a commit per step, at the first one's
        # `--> <id>` (after its cache push); without, at the second step
        [at] = under_way_at
        assert "STEP 3/3" in "\n".join(lines[at:]), lines
        if cache:
            assert lines[at].startswith("--> ") and "Pushing cache" in lines[at - 1], lines
            assert "STEP 2/3" in "\n".join(lines[:at]), lines
        else:
            assert lines[at].startswith("STEP 2/3"), lines
        # the read started before the build's end: at the last step's cache push (when
        # on) or its `--> <id>`, before podman tags
        [at] = committed_at
        assert f"COMMIT {tag}" in lines[:at], lines  # the commit's copy progress between
        assert any("Successfully tagged" in ln for ln in lines[at + 1:]), lines
        if cache:
            assert "Pushing cache" in lines[at], lines
        read_id, files = await read[0]
        assert same_image(read_id, image_id)
        assert any(path.endswith("late_package-1.0.dist-info/METADATA") for path in files)
    finally:
        await runtime.unmount_images()
        await runtime.remove_images([tag])


async def test_an_sbom_read_from_a_name_that_moved_is_made_from_the_built_image(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    """Another build on the host tags the same name meanwhile: the SBOM read at the commit
    is of the busybox base; the build's image (Debian) is what the document lists."""
    debian = ensure_debian_image()
    moved = f"localhost/slipway-test-moved-{uuid.uuid4().hex[:12]}:latest"
    subprocess.run(["podman", "tag", base_image, moved], check=True)
    debian_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", debian],
                               check=True, capture_output=True, text=True).stdout.strip()
    build = Build(pb.BuildPack(repository="ns/moved"),
                  WorkerEnvironment(token="t", server="127.0.0.1:1"), reporter=None)  # type: ignore[arg-type]
    build.runtime = podman_runtime(tmp_path, registry.host)
    built: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    try:
        making = asyncio.ensure_future(build._sbom_of_commit(moved, "ns/moved", built))
        await asyncio.sleep(0)
        built.set_result(debian_id)
        document = await making
        names = {c["name"] for c in document["components"]}
        assert {"dpkg", "apt", "debian"} <= names and "busybox" not in names
    finally:
        await build.runtime.unmount_images()
        subprocess.run(["podman", "untag", base_image, moved], capture_output=True)
