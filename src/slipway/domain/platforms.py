"""Build platforms (docs/multi-arch.md): `os/arch[/variant]` strings as podman's and
buildah's `--platform` take them, checked the same way by the API, the CLI, the executor
config and the worker.

Only linux images are built (a worker runs Linux containers). The architectures are the
OCI image spec's GOARCH values that Debian's qemu-user-static can emulate; a variant is
only known for arm (v5, v6, v7) and arm64 (v8), as the image spec lists them.
"""

from __future__ import annotations

from collections.abc import Iterable

# OCI architecture -> the qemu-user name Debian's qemu-user-static registers with binfmt
# (/proc/sys/fs/binfmt_misc/qemu-NAME)
QEMU_NAMES = {
    "amd64": "x86_64",
    "386": "i386",
    "arm64": "aarch64",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
    "mips64": "mips64",
    "mipsle": "mipsel",
    "mips": "mips",
    "loong64": "loongarch64",
}
VARIANTS = {"arm": ("v5", "v6", "v7"), "arm64": ("v8",)}
PLATFORMS_MAX = 8
PLATFORM_RULE = (
    "linux/ARCH or linux/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64 (ARCH one of "
    + ", ".join(QEMU_NAMES)
    + ")"
)


class InvalidPlatform(ValueError):
    """A platform string that breaks the rule above; the message says which and how."""


def normalize_platform(value: str) -> str:
    """The platform in its canonical spelling (lowercase, no spaces); raise InvalidPlatform."""
    text = value.strip().lower()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidPlatform(f"{value[:64]!r} is not a platform: use {PLATFORM_RULE}")
    os_name, arch = parts[0], parts[1]
    if os_name != "linux":
        raise InvalidPlatform(
            f"{value[:64]!r}: only linux images are built; use {PLATFORM_RULE}"
        )
    if arch not in QEMU_NAMES:
        raise InvalidPlatform(f"{value[:64]!r}: unknown architecture {arch!r}; use {PLATFORM_RULE}")
    if len(parts) == 3 and parts[2] not in VARIANTS.get(arch, ()):
        known = ", ".join(VARIANTS.get(arch, ())) or "none"
        raise InvalidPlatform(
            f"{value[:64]!r}: {arch} has no variant {parts[2]!r} (variants: {known})"
        )
    return text


def normalize_platforms(values: Iterable[str]) -> list[str]:
    """Each platform checked and in canonical spelling, in the order given; a platform
    given twice or more than PLATFORMS_MAX platforms is an error."""
    platforms = [normalize_platform(v) for v in values]
    if len(platforms) > PLATFORMS_MAX:
        raise InvalidPlatform(
            f"{len(platforms)} platforms: at most {PLATFORMS_MAX} in one build"
        )
    twice = sorted({p for p in platforms if platforms.count(p) > 1})
    if twice:
        raise InvalidPlatform(f"platform {twice[0]!r} is given more than once; list it once")
    return platforms


def architecture(platform: str) -> str:
    """linux/arm64/v8 -> arm64 (the platform already normalized)."""
    return platform.split("/")[1]
