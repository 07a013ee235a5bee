"""The local base image builds FROM: localhost/slipway-base:latest (busybox, no pull)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

BASE_IMAGE = "localhost/slipway-base:latest"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make-base-image.sh"
_lock = threading.Lock()
_done = False


def podman_available() -> bool:
    return shutil.which("podman") is not None and shutil.which("buildah") is not None


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
