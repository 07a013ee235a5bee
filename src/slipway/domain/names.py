"""slipway's rules for the names in an image reference (registry host, namespace,
repository, tag) and for build argument names, and how a reference splits into parts.
The API, the CLI, the worker and the executors all check names here, so a build the API
accepts is one its worker can push.

Where Quay, the OCI distribution spec and docker/podman differ, the strictest rule wins:

- namespace: Quay's rule for user and organization names (2-255 lowercase letters and
  digits, separated by single '.', '_' or '-'), stricter than the OCI path component.
- repository: the OCI path component (lowercase letters and digits, separated by '.',
  '_', '__' or dashes), at most 255 characters. Quay's own pattern lets `app-` and `a..b`
  through, which podman, buildah and the registries then refuse.
- tag: OCI's and Quay's rule (they agree): 1-128 ASCII letters, digits, '_', '.', '-',
  not starting with '.' or '-'.
- registry host: docker's domain rule (DNS labels or an IPv4 address, or an IPv6 address
  in brackets, then an optional :port), with the port a real one (1-65535). The first part
  of a reference is a registry host only when it has a '.' or a ':' or is `localhost`:
  otherwise docker and podman read it as a Docker Hub namespace.
- the whole name, host/namespace/repository: at most 255 characters, the limit of
  docker's and podman's reference parsers.

A name is checked whole: `re.fullmatch`, never `match` with `$` (which lets a trailing
newline through).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
NAME_MAX = 255

_NAMESPACE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a build secret's id: no ',' or '=', which would break `--secret id=ID,src=FILE`
SECRET_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[A-Fa-f0-9:]+\])(?::(?P<port>[0-9]+))?")

NAMESPACE_RULE = (
    "2-255 lowercase letters and digits, separated by single '.', '_' or '-' (e.g. team-a)"
)
REPOSITORY_RULE = (
    "up to 255 lowercase letters and digits, separated by '.', '_', '__' or dashes, "
    "not starting or ending with one (e.g. my-app)"
)
TAG_RULE = (
    "up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-' (e.g. v1.2)"
)
HOST_RULE = (
    "a host name with a '.', an IP address, or localhost, with an optional :port "
    "(e.g. registry.example.com or 127.0.0.1:5000)"
)


class InvalidName(ValueError):
    """A name that breaks a rule; `field` is which one: namespace, repository, tag,
    registry. The message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_namespace(namespace: str) -> None:
    if not (2 <= len(namespace) <= NAME_MAX and _NAMESPACE.fullmatch(namespace)):
        raise InvalidName("namespace", f"namespace {namespace!r} is not valid: {NAMESPACE_RULE}")


def check_repository(repository: str) -> None:
    """One repository name (no '/'), as in the API's route and the CLI's -t."""
    if not (len(repository) <= NAME_MAX and _PATH_COMPONENT.fullmatch(repository)):
        raise InvalidName(
            "repository", f"repository {repository!r} is not valid: {REPOSITORY_RULE}"
        )


def check_tag(tag: str) -> None:
    if not _TAG.fullmatch(tag):
        raise InvalidName("tag", f"{tag!r} is not a valid tag: {TAG_RULE}")


def check_build_arg_name(name: str) -> None:
    """A build argument's name (`--build-arg NAME=VALUE`, an `ARG NAME` line)."""
    if not _BUILD_ARG.fullmatch(name):
        raise InvalidName(
            "build_args",
            f"{name!r} is not a valid build argument name: letters, digits and '_', not "
            "starting with a digit",
        )


def looks_like_registry_host(first: str) -> bool:
    """Whether docker and podman take `first`, the part of a reference before its first
    '/', for a registry host rather than a Docker Hub namespace."""
    return "." in first or ":" in first or first == "localhost"


def check_registry_host(host: str) -> None:
    match = _HOST.fullmatch(host)
    port = match.group("port") if match else None
    if (
        not looks_like_registry_host(host)
        or match is None
        or (port is not None and not 0 < int(port) < 65536)
    ):
        raise InvalidName("registry", f"{host!r} is not a registry host: {HOST_RULE}")


def check_image_name(registry: str, namespace: str, repository: str) -> None:
    """Every rule for `registry/namespace/repository`, the name each tag is pushed as."""
    check_registry_host(registry)
    check_namespace(namespace)
    for component in repository.split("/"):
        check_repository(component)
    name = f"{registry}/{namespace}/{repository}"
    if len(name) > NAME_MAX:
        raise InvalidName(
            "repository",
            f"repository {namespace}/{repository} pushed to {registry} makes an image name "
            f"of {len(name)} characters; docker and podman allow at most {NAME_MAX}: "
            "choose a shorter repository name",
        )


def check_repository_path(registry: str, path: str) -> None:
    """A protocol BuildPack's `namespace/name` (Quay's nested `namespace/a/b` too)."""
    namespace, slash, repository = path.partition("/")
    if not slash:
        raise InvalidName(
            "repository", f"repository {path!r} is not NAMESPACE/NAME (e.g. acme/web)"
        )
    check_image_name(registry, namespace, repository)


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "docker.io", "quay.io", "127.0.0.1:5000", "localhost"
    repository: str  # "library/busybox", "ns/name"
    tag: str = "latest"
    digest: str = ""

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        return f"{name}@{self.digest}" if self.digest else f"{name}:{self.tag}"


def parse_image_ref(ref: str) -> ImageRef:
    """Split an image reference the way docker does (default registry, library/, latest)."""
    name, _, digest = ref.partition("@")
    tag = ""
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1 :]:
        name, tag = name.rsplit(":", 1)
    first, sep, rest = name.partition("/")
    if sep and looks_like_registry_host(first):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = f"library/{repository}"
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    return ImageRef(registry.lower(), repository, tag or ("" if digest else "latest"), digest)
