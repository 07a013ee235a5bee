"""`slipway build` flags through a real server, a local podman worker and a real registry:
--label shows in `skopeo inspect`, --iidfile holds the registry's digest, --no-cache runs a
RUN step again that the layer cache would have skipped, --pull fails on a base image that
cannot be pulled where the build would otherwise use the local copy."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.registry import Registry
from support.server import RunningServer, running_server

pytestmark = pytest.mark.podman

SLIPWAY = Path(sys.executable).parent / "slipway"
MARKER_DOCKERFILE = """\
FROM {base}
LABEL slipway.test={run}
RUN echo "cache""-marker" && date > /stamp
LABEL stage=done
"""


def skopeo(reference: str) -> dict[str, object]:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict(json.loads(out))


async def cli_build(slipway: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLIPWAY_URL": slipway.base_url,
           "SLIPWAY_TOKEN": slipway.server.admin_token or ""}
    return await asyncio.to_thread(
        subprocess.run, [str(SLIPWAY), "build", *args], capture_output=True, text=True,
        env=env, timeout=300)


def executors(layer_cache: bool = False) -> list[object]:
    return ["ephemeral", {"EXECUTORS": [
        {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman", "LAYER_CACHE": layer_cache}]}]


async def test_labels_and_iidfile(tmp_path: Path, registry: Registry, base_image: str) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {base_image}\nRUN true\n")
    iid = tmp_path / "iid"
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors()) as slipway:
        ref = f"{registry.host}/demo/labelled:v1"
        result = await cli_build(
            slipway, str(tmp_path / "ctx"), "-t", ref, "-q", "--iidfile", str(iid),
            "--label", "org.opencontainers.image.source=https://example.com/app",
            "--label", "team=build tools")
        assert result.returncode == 0, result.stderr
    inspected = skopeo(ref)
    labels = dict(inspected["Labels"])  # type: ignore[call-overload]
    labels.pop("io.buildah.version", None)  # buildah's own
    assert labels == {
        "org.opencontainers.image.source": "https://example.com/app", "team": "build tools"}
    assert iid.read_text() == inspected["Digest"]
    assert result.stdout == f"{inspected['Digest']}\n"  # -q: the digest and nothing else


async def test_no_cache_runs_a_cached_step_again(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    (tmp_path / "ctx").mkdir()
    run = uuid.uuid4().hex
    (tmp_path / "ctx" / "Dockerfile").write_text(
        MARKER_DOCKERFILE.format(base=base_image, run=run))
    ref = f"{registry.host}/demo/cached:latest"
    try:
        await _cached_builds(tmp_path, registry, ref)
    finally:  # the cache is kept on purpose: this test's layers go (they carry its label)
        storage = _storage()
        ids = subprocess.run(
            ["podman", *storage, "images", "-a", "-q", "--filter", f"label=slipway.test={run}"],
            capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["podman", *storage, "rmi", "-f", *ids], capture_output=True)


def _storage() -> list[str]:
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    return ["--storage-driver", driver] if driver else []


async def _cached_builds(tmp_path: Path, registry: Registry, ref: str) -> None:
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors(layer_cache=True)) as slipway:

        async def ran_the_step(*flags: str) -> bool:
            result = await cli_build(slipway, str(tmp_path / "ctx"), "-t", ref, *flags)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr
            return "cache-marker" in result.stdout.splitlines()

        assert await ran_the_step()  # first build: nothing cached
        assert not await ran_the_step()  # the RUN step came from the layer cache
        assert await ran_the_step("--no-cache")  # --no-cache: it ran again


async def test_pull_refuses_the_local_copy_of_a_base_it_cannot_pull(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    # a base image present here under a registry name whose registry is gone
    gone = "127.0.0.1:9/gone/base:1"
    storage = _storage()
    subprocess.run(["podman", *storage, "tag", base_image, gone], check=True)
    try:
        (tmp_path / "ctx").mkdir()
        (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {gone}\nRUN true\n")
        async with running_server(
            tmp_path, SERVER_HOSTNAME=registry.host,
            INSECURE_REGISTRIES=[registry.host, "127.0.0.1:9"], BUILD_MANAGER=executors(),
        ) as slipway:
            ref = f"{registry.host}/demo/pulled:latest"
            plain = await cli_build(slipway, str(tmp_path / "ctx"), "-t", ref)
            assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr
            assert f"Could not pull {gone}; using the local copy" in plain.stdout
            strict = await cli_build(slipway, str(tmp_path / "ctx"), "-t", ref, "--pull")
            assert strict.returncode == 1
            assert f"could not pull base image {gone}" in strict.stderr
    finally:
        subprocess.run(["podman", *storage, "untag", base_image, gone], capture_output=True)
