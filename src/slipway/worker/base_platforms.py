"""Whether a build's base images offer every platform it is built for (docs/multi-arch.md),
checked before the first build step.

Without the check, a multi-platform build FROM a single-arch local image built the whole
amd64 half, then failed on the arm64 half with `pinging container registry localhost: Get
"https://localhost/v2/"`: buildah, asked for a platform the local image is not, takes
the image as missing and pulls its name, and a `localhost/` name then reads as a registry
at localhost:443 (containers/image retries that three times)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from slipway.domain.platforms import InvalidPlatform, normalize_platform


def _parts(platform: str) -> tuple[str, str, str]:
    os_name, _, rest = platform.lower().partition("/")
    arch, _, variant = rest.partition("/")
    if arch == "arm64" and variant == "v8":
        variant = ""  # arm64 and arm64/v8 are one platform
    return os_name, arch, variant


def offers(offered: Sequence[str], wanted: str) -> bool:
    """Whether one of `offered` (os/arch[/variant]) runs as `wanted`; a variant only
    counts where both name one."""
    os_name, arch, variant = _parts(wanted)
    for entry in offered:
        their_os, their_arch, their_variant = _parts(entry)
        if (their_os, their_arch) == (os_name, arch) and (
            not variant or not their_variant or variant == their_variant
        ):
            return True
    return False


def manifest_list_platforms(listing: str) -> list[str]:
    """The platforms of a manifest list or image index, as `podman manifest inspect`
    prints it: os/arch[/variant], in the list's order, each once."""
    found: list[str] = []
    for entry in json.loads(listing).get("manifests") or []:
        platform = entry.get("platform") or {}
        parts = [platform.get("os", ""), platform.get("architecture", "")]
        if platform.get("variant"):
            parts.append(platform["variant"])
        name = "/".join(parts)
        # buildx's attestation entries say unknown/unknown: no platform to build on
        if all(parts[:2]) and "unknown" not in parts and name not in found:
            found.append(name)
    return found


def pinned_platform(flag: str) -> str:
    """The platform a `FROM --platform=...` value names once substituted, "" when it is
    not one (an ARG left empty): such a stage is taken to be built for each platform."""
    try:
        return normalize_platform(flag) if flag else ""
    except InvalidPlatform:
        return ""


def missing_platform_message(image: str, missing: Sequence[str], offered: Sequence[str],
                             requested: Sequence[str]) -> str:
    """The user's error: which image lacks which platform, what it has, what to do."""
    usable = [p for p in requested if offers(offered, p)]
    advice = (f"build for {', '.join(usable)} only, or use a multi-arch base" if usable
              else "use a base image built for it (a multi-arch base)")
    return (f"base image {image} has no {' or '.join(missing)} variant "
            f"(it has: {', '.join(offered)}); {advice}")
