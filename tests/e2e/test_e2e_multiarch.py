"""Multi-arch builds (docs/multi-arch.md) through a real server, a local podman worker
and a real registry: `slipway build --platform linux/amd64,linux/arm64` pushes one
manifest list under every tag, reports the list's digest, and each platform's image runs
(arm64 under QEMU user emulation); a platform the host cannot run fails with the fix."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.images import ensure_multiarch_base_image, podman_available, remove_multiarch_list
from support.registry import Registry
from support.server import RunningServer, running_server
from test_e2e_build_flags import cli_build, executors

from slipway.domain.platforms import QEMU_NAMES
from slipway.worker.emulation import BINFMT_MISC, missing_emulation

pytestmark = pytest.mark.podman

DOCKERFILE = """\
FROM {base}
RUN uname -m > /built-on
"""


@pytest.fixture(scope="module")
def multiarch_base() -> Iterator[str]:
    if not podman_available():
        pytest.skip("podman/buildah are not installed")
    if missing_emulation(["linux/arm64"]):
        pytest.skip(f"no QEMU user emulation for arm64 here ({BINFMT_MISC}/qemu-aarch64): "
                    "install qemu-user-static (scripts/install-system.sh)")
    yield ensure_multiarch_base_image()
    remove_multiarch_list()  # the host's `podman images` fails while it exists (images.py)


def _storage() -> list[str]:
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    return ["--storage-driver", driver] if driver else []


def run_in(ref: str, platform: str, *command: str) -> str:
    """Run `command` in the registry's image for `platform`, as a user would."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], 4096)
    argv = ["podman", *_storage(), "--runtime", "runc", "run", "--rm", "--net", "host",
            "--pull", "always", "--tls-verify=false", "--platform", platform,
            "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
            ref, *command]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip()
    finally:
        subprocess.run(["podman", *_storage(), "rmi", ref], capture_output=True)


async def test_two_platforms_push_one_manifest_list(
    tmp_path: Path, registry: Registry, multiarch_base: str
) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(DOCKERFILE.format(base=multiarch_base))
    refs = [f"{registry.host}/demo/multi:v1", f"{registry.host}/demo/multi:latest"]
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors()) as slipway:
        result = await cli_build(slipway, str(tmp_path / "ctx"), "-t", refs[0], "-t", refs[1],
                                 "--platform", "linux/amd64,linux/arm64", "-q")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    digest = result.stdout.strip()
    for ref in refs:
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            check=True, capture_output=True,
        ).stdout
        listed = json.loads(raw)
        assert listed["mediaType"].endswith(("manifest.list.v2+json", "image.index.v1+json"))
        platforms = sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                           for m in listed["manifests"])
        assert platforms == ["linux/amd64", "linux/arm64"]
        assert digest == "sha256:" + hashlib.sha256(raw).hexdigest()  # the list's digest
    # each image was built for its platform: its RUN step ran on that architecture
    assert run_in(refs[0], "linux/arm64", "cat", "/built-on") == "aarch64"
    assert run_in(refs[0], "linux/arm64", "uname", "-m") == "aarch64"
    assert run_in(refs[1], "linux/amd64", "cat", "/built-on") == "x86_64"


def _unemulated_platform() -> str | None:
    for arch in QEMU_NAMES:
        if missing_emulation([f"linux/{arch}"]):
            return f"linux/{arch}"
    return None


async def test_a_platform_without_emulation_fails_naming_the_package(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    platform = _unemulated_platform()
    if platform is None:
        pytest.skip(f"every platform has QEMU user emulation registered in {BINFMT_MISC}")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors()) as slipway:
        result = await cli_build(slipway, str(tmp_path / "ctx"), "-t",
                                 f"{registry.host}/demo/unemulated:latest",
                                 "--platform", f"linux/amd64,{platform}")
    assert result.returncode == 1
    assert f"platform {platform} needs QEMU user emulation" in result.stderr
    assert "qemu-user-static" in result.stderr


async def _only_build(slipway: RunningServer, repository: str) -> dict[str, Any]:
    listed = await slipway.api.get(f"/api/v1/repository/demo/{repository}/build/")
    builds = listed.json()["builds"]
    assert len(builds) == 1, builds
    build = await slipway.api.get(f"/api/v1/repository/demo/{repository}/build/{builds[0]['id']}")
    return dict(build.json())


async def test_a_single_arch_base_is_refused_before_anything_is_built(
    tmp_path: Path, registry: Registry, multiarch_base: str, base_image: str
) -> None:
    """It used to build the amd64 half, then fail three times over pinging
    https://localhost/v2/ for the arm64 one."""
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo never-run-{tmp_path.name}\n")
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors()) as slipway:
        result = await cli_build(slipway, str(tmp_path / "ctx"), "-t",
                                 f"{registry.host}/demo/single:latest",
                                 "--platform", "linux/amd64,linux/arm64")
        build = await _only_build(slipway, "single")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"base image {base_image} has no linux/arm64 variant (it has: linux/amd64); "
            "build for linux/amd64 only, or use a multi-arch base") in output
    assert "STEP" not in output and f"never-run-{tmp_path.name}" not in output
    assert "https://localhost" not in output
    assert build["phase"] == "error"
    assert len(build["attempts"]) == 1  # the user's error: not retried


async def test_platform_build_args_are_set_per_platform_without_warnings(
    tmp_path: Path, registry: Registry, multiarch_base: str
) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f"FROM {multiarch_base}\n"
        "ARG TARGETARCH\n"
        "ARG TARGETPLATFORM\n"
        'RUN echo "built for $TARGETPLATFORM arch=$TARGETARCH on $(uname -m)"\n')
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host],
                              BUILD_MANAGER=executors()) as slipway:
        result = await cli_build(slipway, str(tmp_path / "ctx"), "-t",
                                 f"{registry.host}/demo/args:latest",
                                 "--platform", "linux/amd64,linux/arm64")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "built for linux/amd64 arch=amd64 on x86_64" in output
    assert "built for linux/arm64 arch=arm64 on aarch64" in output
    assert "not consumed" not in output
    assert "TARGETOS" not in output and "SLIPWAY_BUILD_MARKER" not in output
