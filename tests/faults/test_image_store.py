"""The host's image store stays usable: after `make test` (and `make demo`), `podman
images` failed once, because localhost/slipway-base:multiarch, a manifest list, named an
amd64 image that a rebuild of the base had replaced and that was then removed
("reading manifest for image instance ... file does not exist").

- After every other test of the run (`run_last`), `podman images` works and the list,
  where it exists, inspects and names only images that are there.
- In a private image store: the base and its list built, the base rebuilt (--force):
  the list is made again from the new image, the replaced one is gone, the store works;
  and an unchanged base is not rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.images import (
    BASE_IMAGE,
    MULTIARCH_BASE_IMAGE,
    MULTIARCH_SCRIPT,
    SCRIPT,
    image_store_problems,
    podman_available,
)

pytestmark = pytest.mark.skipif(not podman_available(), reason="podman/buildah not installed")


@pytest.mark.run_last
def test_the_host_image_store_is_usable_after_the_run() -> None:
    assert image_store_problems() == []


def _emulates_arm64() -> bool:
    return Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()


def _arm64_busybox_cached() -> bool:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "slipway"
    return (cache / "busybox-arm64").exists()


@pytest.fixture
def private_store(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of podman (and the scripts) with a store of their own (vfs: no
    overlay mount inside the test's temp dir), removed afterwards."""
    conf = tmp_path / "storage.conf"
    conf.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{tmp_path / "graph"}"\n'
        f'runroot = "{tmp_path / "run"}"\n')
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    env.pop("STORAGE_DRIVER", None)
    notes = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "slipway" / (
        "base-recipes")
    before = set(notes.glob("*"))
    yield env
    # the recipe notes make-base-image.sh kept for this store's images (one per image ID)
    for note in set(notes.glob("*")) - before:
        note.unlink(missing_ok=True)
    # (vfs mounts nothing: its directories simply go; never `podman system reset`, which
    # reaches beyond the store)
    for part in ("graph", "run"):
        shutil.rmtree(tmp_path / part, ignore_errors=True)


def _run(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout


def _image_id(env: dict[str, str], image: str) -> str:
    return _run(env, "podman", "image", "inspect", "--format", "{{.Id}}", image).strip()


def _listed_digests(env: dict[str, str]) -> set[str]:
    listed = json.loads(_run(env, "podman", "manifest", "inspect", MULTIARCH_BASE_IMAGE))
    return {m["digest"] for m in listed["manifests"]}


@pytest.mark.skipif(not (_emulates_arm64() and _arm64_busybox_cached()),
                    reason="needs QEMU's arm64 emulation and the cached arm64 busybox "
                           "(scripts/make-multiarch-base.sh fetches it once)")
def test_rebuilding_the_base_keeps_its_manifest_list_whole(
    private_store: dict[str, str]
) -> None:
    env = private_store
    _run(env, str(MULTIARCH_SCRIPT), "arm64")
    replaced = _image_id(env, BASE_IMAGE)
    assert image_store_problems(env) == []

    # unchanged: not rebuilt, the list left as it is
    said = _run(env, str(SCRIPT))
    assert "up to date" in said and _image_id(env, BASE_IMAGE) == replaced
    said = _run(env, str(MULTIARCH_SCRIPT), "arm64")
    assert "up to date" in said

    _run(env, str(SCRIPT), "--force")  # what once broke the store
    assert _image_id(env, BASE_IMAGE) != replaced
    assert image_store_problems(env) == []
    new_digest = _run(env, "podman", "image", "inspect", "--format", "{{.Digest}}",
                      BASE_IMAGE).strip()
    assert new_digest in _listed_digests(env)
    ids = _run(env, "podman", "images", "--all", "--no-trunc", "--format", "{{.ID}}").split()
    assert all(replaced not in i for i in ids)  # the replaced image went
