"""The registry layer cache (docs/layer-cache.md) through a real server, local podman
workers and a real registry. Each build runs on a worker with a container store of its
own, empty at the start (CONTAINERS_STORAGE_CONF), as a fresh Pod or instance would: the
second build finds its RUN step in the cache repository the first pushed after its end,
and the pushed image has the same layers. A build whose cache repository is empty looks nothing
up there (the registry's access log shows what was asked). A cache the registry cannot
serve slows a build and says so; the build completes, its steps run once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from support.registry import Registry
from support.server import RunningServer, running_server

pytestmark = pytest.mark.podman

SLIPWAY = Path(sys.executable).parent / "slipway"
DOCKERFILE = """\
FROM {base}
RUN echo "slow""-step {run}" && sleep 2 && date > /stamp
COPY hello.txt /hello.txt
"""


def skopeo(reference: str) -> dict[str, object]:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict(json.loads(out))


def fresh_store(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started from now on use an empty container store in `directory`."""
    directory.mkdir(parents=True)
    conf = directory / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{directory}/graph"\n'
        f'runroot = "{directory}/run"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))


def registry_base(registry: Registry, base_image: str) -> str:
    """The base image in the test registry: a fresh store pulls it from there."""
    ref = f"{registry.host}/base/slipway-base:1"
    subprocess.run(
        ["podman", "push", "--tls-verify=false", base_image, f"docker://{ref}"],
        check=True, capture_output=True)
    return ref


async def build_on_a_fresh_worker(
    tmp_path: Path, name: str, registry: Registry, ref: str, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess[str]:
    fresh_store(tmp_path / f"store-{name}", monkeypatch)
    async with running_server(
        tmp_path / f"server-{name}", SERVER_HOSTNAME=registry.host,
        INSECURE_REGISTRIES=[registry.host],
        BUILD_MANAGER=["ephemeral", {"EXECUTORS": [
            {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman"}]}],
    ) as slipway:
        result = await cli_build(slipway, str(tmp_path / "ctx"), "-t", ref)
        # the worker pushes the steps to the cache after the build's end: the next
        # build (another worker) should find them
        await slipway.workers_gone()
        return result


async def cli_build(slipway: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLIPWAY_URL": slipway.base_url,
           "SLIPWAY_TOKEN": slipway.server.admin_token or ""}
    return await asyncio.to_thread(
        subprocess.run, [str(SLIPWAY), "build", *args], capture_output=True, text=True,
        env=env, timeout=300)


def context(tmp_path: Path, base: str) -> str:
    run = uuid.uuid4().hex
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(DOCKERFILE.format(base=base, run=run))
    (tmp_path / "ctx" / "hello.txt").write_text("hello\n")
    return f"slow-step {run}"


def ran(result: subprocess.CompletedProcess[str], marker: str) -> bool:
    return marker in result.stdout.splitlines()


def registry_requests(registry: Registry) -> list[tuple[str, str]]:
    """(method, path) of each request the registry served, in order (its access log)."""
    text = (registry.storage.parent / "registry.log").read_text(errors="replace")
    return re.findall(r'^\S+ - \S+ \[[^]]*\] "([A-Z]+) (\S+) HTTP', text, re.M)


def tags(registry: Registry, repository: str) -> list[str]:
    with urllib.request.urlopen(f"{registry.url}/v2/{repository}/tags/list") as answer:
        return list(json.load(answer).get("tags") or [])


@pytest.fixture
def stores_removed(tmp_path: Path) -> object:
    yield None
    for store in tmp_path.glob("store-*"):  # vfs: plain files, no mounts left
        shutil.rmtree(store, ignore_errors=True)


@pytest.mark.usefixtures("stores_removed")
async def test_a_fresh_worker_reuses_the_steps_of_an_earlier_build(
    tmp_path: Path, registry: Registry, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = context(tmp_path, registry_base(registry, base_image))
    ref = f"{registry.host}/demo/cached:latest"

    first = await build_on_a_fresh_worker(tmp_path, "one", registry, ref, monkeypatch)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert ran(first, marker)
    assert f"Registry cache: {registry.host}/demo/cached-cache" in first.stdout
    # the build did not wait for its steps to reach the cache: they went after its end
    assert "Pushing cache" not in first.stdout
    assert (f"Registry cache: the steps go to {registry.host}/demo/cached-cache once the "
            "build ends") in first.stdout.splitlines()
    pushed_first = skopeo(ref)

    second = await build_on_a_fresh_worker(tmp_path, "two", registry, ref, monkeypatch)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert not ran(second, marker)  # the RUN step did not run again
    lines = second.stdout.splitlines()
    assert any(ln.startswith("Step 2/3 cached (registry cache): RUN echo") for ln in lines), (
        second.stdout[-3000:])
    assert any(ln.startswith("Layer cache: 2 of 2 steps cached") for ln in lines)
    pushed_second = skopeo(ref)
    assert pushed_second["Layers"] == pushed_first["Layers"]
    assert pushed_second["Digest"] == pushed_first["Digest"]

    # the cache images it pulled went with the build: nothing is left in the store
    left = subprocess.run(
        ["podman", "images", "-a", "--format", "{{.Repository}}:{{.Tag}}"],
        env={**os.environ, "CONTAINERS_STORAGE_CONF": str(tmp_path / "store-two/storage.conf")},
        check=True, capture_output=True, text=True).stdout.split()
    assert left == []


@pytest.mark.usefixtures("stores_removed")
async def test_a_cold_build_looks_nothing_up_in_an_empty_cache(
    tmp_path: Path, registry: Registry, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = context(tmp_path, registry_base(registry, base_image))
    ref = f"{registry.host}/demo/cold:latest"

    result = await build_on_a_fresh_worker(tmp_path, "one", registry, ref, monkeypatch)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert ran(result, marker)
    assert "Registry cache: empty, no step is looked up" in result.stdout.splitlines()

    requests = registry_requests(registry)
    cache = "/v2/demo/cold-cache/manifests/"
    # the empty cache repository: its tag list read once, no step's key asked for
    assert [r for r in requests if r[1].startswith(cache) and r[0] in ("GET", "HEAD")] == []
    assert [r for r in requests if r[1].startswith("/v2/demo/cold-cache/tags/list")] == [
        ("GET", "/v2/demo/cold-cache/tags/list?n=1")]
    # both steps still went to the cache, for the next build
    assert len(tags(registry, "demo/cold-cache")) == 2


@pytest.mark.usefixtures("stores_removed")
async def test_a_cache_the_registry_cannot_serve_slows_the_build_and_says_so(
    tmp_path: Path, registry: Registry, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = context(tmp_path, registry_base(registry, base_image))
    ref = f"{registry.host}/demo/broken:latest"
    # the registry cannot store anything under the cache repository (a file where its
    # directory goes): reading the cache and pushing to it fail with the registry's 500
    repositories = registry.storage / "docker" / "registry" / "v2" / "repositories"
    (repositories / "demo").mkdir(parents=True, exist_ok=True)
    (repositories / "demo" / "broken-cache").write_text("not a repository\n")

    result = await build_on_a_fresh_worker(tmp_path, "one", registry, ref, monkeypatch)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    lines = result.stdout.splitlines()
    assert lines.count(marker) == 1, result.stdout[-3000:]  # the steps ran once
    unavailable = [ln for ln in lines if ln.startswith("cache unavailable:")]
    assert len(unavailable) == 1, result.stdout[-3000:]
    # said at the start, from the registry's answer to the cache's tag list: the build
    # neither looks its steps up nor pushes them, so it need not run again
    assert "answered 500" in unavailable[0] and "building without it" in unavailable[0]
    assert skopeo(ref)["Digest"]
    cache = [r for r in registry_requests(registry) if r[1].startswith("/v2/demo/broken-cache/")]
    assert cache == [("GET", "/v2/demo/broken-cache/tags/list?n=1")]
