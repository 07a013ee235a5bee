"""A registries.conf for the build's podman/buildah that marks INSECURE_REGISTRIES as
plain-HTTP/unverified registries.

`--tls-verify=false` does not reach every registry call buildah 1.28 makes: a `--cache-to`
push that reuses a blob already in the store, and a multi-platform build's cache push,
ping the registry over verified HTTPS and fail. An `insecure = true` entry in
registries.conf is read by every call, so the runtimes run with one
(CONTAINERS_REGISTRIES_CONF): the configuration the host has, plus the entries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

SYSTEM_FILE = Path("/etc/containers/registries.conf")


def current_file(environ: dict[str, str] | None = None) -> Path | None:
    """The registries.conf podman reads now: the variable's, the user's, or the system's."""
    env = os.environ if environ is None else environ
    if env.get("CONTAINERS_REGISTRIES_CONF"):
        return Path(env["CONTAINERS_REGISTRIES_CONF"])
    home = env.get("XDG_CONFIG_HOME") or (Path(env.get("HOME", "/")) / ".config").as_posix()
    user = Path(home) / "containers" / "registries.conf"
    if user.is_file():
        return user
    return SYSTEM_FILE if SYSTEM_FILE.is_file() else None


def with_insecure(current: str, registries: Iterable[str]) -> str | None:
    """`current` with an insecure [[registry]] entry for each registry it does not name
    yet; None when it cannot be extended (the old v1 format cannot hold [[registry]])."""
    if "[registries." in current:
        return None
    lines = [current.rstrip("\n"), ""] if current.strip() else []
    for registry in registries:
        quoted = json.dumps(registry)  # a TOML basic string
        if f"location = {quoted}" in current:
            continue  # the host's configuration says how to reach it
        lines += ["[[registry]]", f"location = {quoted}", "insecure = true", ""]
    return "\n".join(lines)


def write_for(registries: Iterable[str], directory: Path) -> Path | None:
    """The registries.conf for the build (in its working directory), None when the
    host's one is to be used as it is."""
    hosts = sorted(set(registries))
    if not hosts:
        return None
    source = current_file()
    try:
        current = source.read_text() if source else ""
    except OSError:
        return None
    content = with_insecure(current, hosts)
    if content is None:
        return None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "registries.conf"
    path.write_text(content)
    return path
