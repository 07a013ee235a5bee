"""The registry cache pushed after the build's end (docs/layer-cache.md, REGISTRY_CACHE_PUSH
after-end), with real podman and a real registry: the build itself pushes nothing to the
cache repository; push_cache then pushes each step there under its cache key, running
none of them again. Steps whose images are gone are not pushed (they would run again),
and a step that starts to run is stopped."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.registry import Registry

from slipway.worker.environment import WorkerEnvironment
from slipway.worker.registry_cache import CachePushWatch, StepWouldRun
from slipway.worker.runtimes import leftovers, make_runtime
from slipway.worker.runtimes.base import BuildSpec, Runtime

pytestmark = pytest.mark.podman

DOCKERFILE = """\
FROM {base}
RUN echo "first {label}" | tee /first
RUN echo "second {label}" > /second
RUN echo "third {label}" && date > /third
"""


def cache_tags(registry: Registry, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"{registry.url}/v2/{repository}/tags/list") as answer:
            return list(json.load(answer).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # the repository does not exist yet
            return []
        raise


def marked_containers(marker: str) -> list[str]:
    """The host's buildah working containers made with the build's marker, found as the
    worker finds them."""
    def podman(*args: str) -> str:
        return subprocess.run(["podman", *args], check=True, capture_output=True,
                              text=True).stdout

    ids = podman("ps", "--all", "--external", "--no-trunc", "--format", "{{.ID}}").split()
    store = podman("info", "--format", "{{.Store.GraphRoot}}|{{.Store.GraphDriverName}}")
    root, _, driver = store.strip().partition("|")
    return leftovers.marked_containers(Path(root) / f"{driver}-containers", ids, marker)


@dataclass
class Built:
    """A build on the host's store whose steps wait for push_cache."""

    runtime: Runtime
    spec: BuildSpec
    lines: list[str]

    @property
    def step_images(self) -> list[str]:
        """The step images the build committed or reused (`--> <id>`)."""
        return [ln[4:].strip() for ln in self.lines
                if re.fullmatch(r"--> [0-9a-f]{11,64}", ln.strip())]

    async def remove(self) -> None:
        await self.runtime.remove_built([*self.spec.tags, *self.step_images])


async def build(tmp_path: Path, base: str, registry: Registry, name: str) -> Built:
    env = WorkerEnvironment(token="t", server="127.0.0.1:1", container_runtime="podman",
                            insecure_registries=(registry.host,))
    # the build's marker is its directory's name: unique, as the worker's
    work = tmp_path / f"slipway-build-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    lines: list[str] = []

    async def sink(line: str) -> None:
        lines.append(line)

    runtime = make_runtime(env, work, sink)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base, label=uuid.uuid4().hex))
    spec = BuildSpec(ctx, ctx / "Dockerfile", [f"{registry.host}/ns/{name}:v1"],
                     insecure=True, keep_layers=True,
                     cache_repo=f"{registry.host}/ns/{name}-cache", cache_push_after_end=True)
    await runtime.build(spec, sink)
    return Built(runtime, spec, lines)


async def test_the_steps_reach_the_cache_after_the_build_without_running_again(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    built = await build(tmp_path, base_image, registry, "after-end")
    try:
        assert not [ln for ln in built.lines if "Pushing cache" in ln], built.lines
        assert cache_tags(registry, "ns/after-end-cache") == []
        assert built.runtime.cache_push_pending

        assert await built.runtime.push_cache(built.step_images) == 3
        assert len(cache_tags(registry, "ns/after-end-cache")) == 3
        assert not built.runtime.cache_push_pending
        assert await built.runtime.push_cache(built.step_images) == 0  # once
    finally:
        await built.remove()


async def test_steps_whose_images_are_gone_are_not_run_again(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    built = await build(tmp_path, base_image, registry, "gone-step")
    # the step images go (another build's clean-up on a shared host, say)
    await built.remove()
    with pytest.raises(StepWouldRun, match="its step would run again"):
        await built.runtime.push_cache(built.step_images)
    assert cache_tags(registry, "ns/gone-step-cache") == []
    assert marked_containers(built.runtime.build_marker) == []  # nothing was started


async def test_a_step_that_starts_to_run_stops_the_push_at_once(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    """The images go after the check (no step image is named to it here): the first
    step's output stops the run, which goes no step further and leaves no container."""
    built = await build(tmp_path, base_image, registry, "stopped")
    await built.remove()
    with pytest.raises(StepWouldRun, match="STEP 2/4"):
        await built.runtime.push_cache([])
    assert cache_tags(registry, "ns/stopped-cache") == []
    assert marked_containers(built.runtime.build_marker) == []
    left = subprocess.run(["podman", "ps", "--all", "--external", "--format", "{{.Names}}"],
                          check=True, capture_output=True, text=True).stdout.split()
    assert not [name for name in left if name.endswith("-working-container")], left


async def test_the_push_is_stopped_at_a_step_that_runs() -> None:
    """The last guard, should a step image go between that check and its step: the
    step's first line of output other than `--> Using cache` (the runtime's own warnings
    aside) stops the run; a step that prints nothing, at its cache push."""
    watch = CachePushWatch()
    for line in ["STEP 1/3: FROM base", "STEP 2/3: RUN make", "--> Using cache 0123456789ab",
                 "--> Pushing cache registry/app-cache:ab12", "--> 0123456789ab"]:
        await watch.line(line)
    assert watch.pushed == 1
    await watch.line("STEP 3/3: RUN make test")
    await watch.line('time="2026-12-07T10:00:00Z" level=warning msg="missing arg"')
    with pytest.raises(StepWouldRun, match="STEP 3/3"):
        await watch.line("compiling...")
    silent = CachePushWatch()
    await silent.line("STEP 2/2: RUN true")
    with pytest.raises(StepWouldRun, match="STEP 2/2"):
        await silent.line("--> Pushing cache registry/app-cache:cd34")
