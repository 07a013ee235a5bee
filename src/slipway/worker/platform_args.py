"""The platform build args docker defines for every build (TARGETPLATFORM, TARGETOS,
TARGETARCH, TARGETVARIANT and the BUILD* four), and buildah's warnings about them.

buildah already sets them, per platform, in a multi-platform build too (buildah 1.28:
`--platform` puts TARGETOS, TARGETARCH, TARGETPLATFORM and a variant's TARGETVARIANT into
the build args of that platform's build; the others come from its built-in defaults), so
the worker passes none: a `--build-arg` would hold one value for every platform. But it
then warns as if the user had passed them: `[Warning] one or more build args were not
consumed: [TARGETARCH TARGETOS TARGETPLATFORM]` when the Dockerfile does not declare
them, and `missing "TARGETVARIANT" build argument` when it declares one it filled from its
defaults. Docker says neither, so the worker drops those warnings, or those names from
them (a name the user passed as a build arg stays)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from slipway.domain.platforms import architecture
from slipway.worker.emulation import native_architectures

AUTOMATIC_ARGS = (
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
)
_NOT_CONSUMED = re.compile(r"^(?P<head>.*build args were not consumed: )\[(?P<names>[^\]]*)\]")
_MISSING = re.compile(r'missing \\?"(?P<name>\w+)\\?" build argument')


def host_platform() -> str:
    """The worker host's own platform, what BUILDPLATFORM says (linux/amd64 on x86_64)."""
    native = native_architectures()
    return f"linux/{native[0]}" if native else "linux/amd64"


def platform_args(platform: str, prefix: str = "TARGET") -> dict[str, str]:
    """docker's values for `platform` (os/arch[/variant]): TARGETPLATFORM etc."""
    os_name, _, rest = platform.partition("/")
    variant = rest.partition("/")[2]
    return {f"{prefix}PLATFORM": platform, f"{prefix}OS": os_name,
            f"{prefix}ARCH": architecture(platform), f"{prefix}VARIANT": variant}


def hidden_args(user_args: Mapping[str, str], extra: Collection[str] = ()) -> frozenset[str]:
    """The names the runtime's build-arg warnings should not mention: the automatic ones
    the user did not pass, and the worker's own (`extra`)."""
    return frozenset(n for n in AUTOMATIC_ARGS if n not in user_args) | frozenset(extra)


def without_hidden_args(line: str, hidden: Collection[str]) -> str | None:
    """The runtime's output line without the names in `hidden`; None to drop the line."""
    if (missing := _MISSING.search(line)) is not None:
        return None if missing["name"] in hidden else line
    match = _NOT_CONSUMED.match(line)
    if match is None:
        return line
    names = [n for n in match["names"].split() if n not in hidden]
    if not names:
        return None
    return f"{match['head']}[{' '.join(names)}]{line[match.end():]}"
