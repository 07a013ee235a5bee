"""Whether this worker's host can run a build platform's RUN steps (docs/multi-arch.md):
natively, or through QEMU user emulation registered with the kernel's binfmt_misc.

A platform the host's CPU does not run needs /proc/sys/fs/binfmt_misc/qemu-NAME present
and enabled (Debian's qemu-user-static registers them, with the F flag, so the emulator
works inside the build's chroot too). Checked before the build starts: without it the
runtime fails on the first RUN step with "exec format error", which names no fix.
"""

from __future__ import annotations

import platform as host
from collections.abc import Iterable
from pathlib import Path

from slipway.domain.platforms import QEMU_NAMES, architecture
from slipway.worker.errors import BuildError

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
# the host's machine name -> the OCI architectures its CPU runs without emulation
_NATIVE = {
    "x86_64": ("amd64", "386"),
    "amd64": ("amd64", "386"),
    "aarch64": ("arm64",),
    "arm64": ("arm64",),
    "armv7l": ("arm",),
    "ppc64le": ("ppc64le",),
    "s390x": ("s390x",),
    "riscv64": ("riscv64",),
}


def native_architectures(machine: str | None = None) -> tuple[str, ...]:
    return _NATIVE.get((machine or host.machine()).lower(), ())


def _enabled(path: Path) -> bool:
    try:
        first = path.read_text().splitlines()[:1]
    except OSError:
        return False
    return first == ["enabled"]


def missing_emulation(
    platforms: Iterable[str], *, binfmt_dir: Path = BINFMT_MISC, machine: str | None = None
) -> list[str]:
    """The platforms (normalized) this host can run neither natively nor through an
    enabled qemu binfmt entry, in the order given."""
    native = native_architectures(machine)
    emulation_on = _enabled(binfmt_dir / "status")
    missing = []
    for platform in platforms:
        arch = architecture(platform)
        if arch in native:
            continue
        if not (emulation_on and _enabled(binfmt_dir / f"qemu-{QEMU_NAMES[arch]}")):
            missing.append(platform)
    return missing


def check_emulation(
    platforms: Iterable[str], *, binfmt_dir: Path = BINFMT_MISC, machine: str | None = None
) -> None:
    """Raise a BuildError naming the first platform the host cannot run and the fix."""
    missing = missing_emulation(platforms, binfmt_dir=binfmt_dir, machine=machine)
    if missing:
        others = f" (also {', '.join(missing[1:])})" if missing[1:] else ""
        raise BuildError(
            f"platform {missing[0]}{others} needs QEMU user emulation: install Debian's "
            "qemu-user-static (binfmt-support) on the worker host, and check that "
            f"{BINFMT_MISC}/qemu-{QEMU_NAMES[architecture(missing[0])]} says enabled"
        )
