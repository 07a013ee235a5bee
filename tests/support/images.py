"""The local base images builds start FROM: localhost/slipway-base:latest (busybox, no
pull) and the manifest list localhost/slipway-base:multiarch. The scripts build them
(scripts/make-base-image.sh is their one builder: each image only when missing or changed,
and a list it is in made again when it changes); the tests, the demo and the benchmarks
call them through here or directly, never podman build of their own."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

BASE_IMAGE = "localhost/slipway-base:latest"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make-base-image.sh"
_lock = threading.Lock()
_done = False


def podman_available() -> bool:
    return shutil.which("podman") is not None and shutil.which("buildah") is not None


def podman_argv(*args: str) -> list[str]:
    """podman with the image store the scripts and the worker use (STORAGE_DRIVER)."""
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    return ["podman", *(["--storage-driver", driver] if driver else []), *args]


# what podman 4.3's `images` says when an image it is listing is removed meanwhile (by a
# worker's clean-up that is still going on): the listing is not a snapshot
_REMOVED_MEANWHILE = ("image not known", "layer not known", "file does not exist")


def host_images() -> list[dict[str, object]]:
    """`podman images --all --format json`, asked again while images it was listing are
    being removed, so that a test sees the store and not podman's race."""
    for _ in range(10):
        result = subprocess.run(podman_argv("images", "--all", "--format", "json"),
                                capture_output=True, text=True, timeout=120)
        if result.returncode == 0:
            listing: list[dict[str, object]] = json.loads(result.stdout or "[]")
            return listing
        if not any(words in result.stderr for words in _REMOVED_MEANWHILE):
            break
        time.sleep(0.5)
    raise AssertionError(f"podman images failed: {result.stderr[-2000:]}")


def image_store_problems(env: dict[str, str] | None = None) -> list[str]:
    """What makes the host's image store unusable, as a user would meet it: `podman
    images` failing, or the multi-arch base list failing to inspect or naming an image
    that is gone. [] when all is well."""
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(podman_argv(*args), capture_output=True, text=True, timeout=120,
                              env=env)

    problems = []
    listing = run("images", "--all", "--digests", "--format", "{{.Digest}}")
    if listing.returncode != 0:
        problems.append(f"podman images failed: {listing.stderr.strip()[-1500:]}")
    if run("manifest", "exists", MULTIARCH_BASE_IMAGE).returncode == 0:
        listed = run("manifest", "inspect", MULTIARCH_BASE_IMAGE)
        if listed.returncode != 0:
            problems.append(f"podman manifest inspect {MULTIARCH_BASE_IMAGE} failed: "
                            f"{listed.stderr.strip()[-1500:]}")
        elif listing.returncode == 0:
            present = set(listing.stdout.split())
            missing = [m["digest"] for m in json.loads(listed.stdout).get("manifests", [])
                       if m["digest"] not in present]
            if missing:
                problems.append(f"{MULTIARCH_BASE_IMAGE} names images that are gone: {missing}")
    return problems


def ensure_base_image() -> str:
    """Build the base image once per session (the script itself skips if present)."""
    global _done
    with _lock:
        if not _done:
            result = subprocess.run(
                [str(SCRIPT)], capture_output=True, text=True, env=dict(os.environ), timeout=600
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"make-base-image.sh failed ({result.returncode}): "
                    f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
                )
            _done = True
    return BASE_IMAGE


MULTIARCH_BASE_IMAGE = "localhost/slipway-base:multiarch"
MULTIARCH_SCRIPT = SCRIPT.parent / "make-multiarch-base.sh"
_multiarch_done = False


def remove_multiarch_list() -> None:
    """Remove the manifest list, keeping the images it names (the next
    ensure_multiarch_base_image makes it again from them in a moment). While a local list
    exists, podman 4.3 cannot list the host's images once an image without layers is there
    too (dangling_image_without_layers):
    `podman images` fails with "checking if image ... is dangling: ... reading manifest
    for image instance ...: file does not exist" (the list does not keep its instances'
    manifests). So the list lives only while the builds that start FROM it run."""
    global _multiarch_done
    with _lock:
        subprocess.run(podman_argv("manifest", "rm", MULTIARCH_BASE_IMAGE),
                       capture_output=True, text=True, timeout=120)
        _multiarch_done = False


def ensure_multiarch_base_image() -> str:
    """A local manifest list of the busybox base for amd64 and arm64, built once per
    machine (the script skips it if present; the arm64 busybox comes from the Debian
    mirror, its RUN step runs under QEMU)."""
    global _multiarch_done
    with _lock:
        if not _multiarch_done:
            result = subprocess.run(
                [str(MULTIARCH_SCRIPT), "arm64"], capture_output=True, text=True,
                env=dict(os.environ), timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"make-multiarch-base.sh failed ({result.returncode}): "
                    f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
                )
            _multiarch_done = True
    return MULTIARCH_BASE_IMAGE


DEBIAN_IMAGE = "localhost/slipway-debian:bookworm"


def ensure_debian_image() -> str:
    """The Debian minbase image (mmdebstrap from the Debian mirror; scripts/make-images.sh
    --base-only, which keeps one already there)."""
    with _lock:
        result = subprocess.run(
            ["bash", str(MULTIARCH_SCRIPT.parent / "make-images.sh"), "--base-only"],
            capture_output=True, text=True, env=dict(os.environ), timeout=1200)
        if result.returncode != 0:
            raise RuntimeError(f"make-images.sh --base-only failed ({result.returncode}): "
                               f"{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return DEBIAN_IMAGE


@contextlib.contextmanager
def dangling_image_without_layers() -> Iterator[str]:
    """A dangling image (no name) without layers, for as long as the block runs; its ID.
    With podman 4.3, while such an image and a local manifest list exist, `podman
    images` fails for every user of the host ("checking if image ... is dangling: ...
    reading manifest for image instance ...: file does not exist"): libimage looks for
    its parent among the other images without layers, the lists included, and cannot
    read a list's instance from it. A dangling image with layers does not do it."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": []},
                         "history": [{"comment": uuid.uuid4().hex}]}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": _sha256(config)},
        "layers": []}).encode()
    # podman names the pulled image after the layout's path: a hex name is always a valid
    # reference (tempfile's random part may hold "_", which cannot end a path component)
    layout = Path(tempfile.gettempdir()) / f"slipway-dangling-{uuid.uuid4().hex}"
    try:
        (layout / "blobs" / "sha256").mkdir(parents=True)
        for blob in (config, manifest):
            (layout / "blobs" / _sha256(blob).replace(":", "/")).write_bytes(blob)
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "size": len(manifest), "digest": _sha256(manifest)}]}))
        pulled = subprocess.run(podman_argv("pull", "--quiet", f"oci:{layout}"),
                                capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    if pulled.returncode != 0:
        raise RuntimeError(f"podman pull of an image without layers: {pulled.stderr}")
    image_id = pulled.stdout.strip().splitlines()[-1]
    try:
        # by its ID: the name the pull gave it (from the layout's path) goes
        untagged = subprocess.run(podman_argv("untag", image_id), capture_output=True,
                                  text=True, timeout=120)
        if untagged.returncode != 0:
            raise RuntimeError(f"podman untag {image_id}: {untagged.stderr}")
        yield image_id
    finally:
        subprocess.run(podman_argv("rmi", image_id), capture_output=True, timeout=120)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
