"""A registries.conf for the build's podman/buildah that marks INSECURE_REGISTRIES as
plain-HTTP/unverified registries.

`--tls-verify=false` does not reach every registry call buildah 1.28 makes: a `--cache-to`
push that reuses a blob already in the store, and a multi-platform build's cache push,
ping the registry over verified HTTPS and fail. An `insecure = true` entry in
registries.conf is read by every call, so the runtimes run with one
(CONTAINERS_REGISTRIES_CONF): the configuration the host has, plus the entries.

`endpoint` reads it back as the container tools do, for the worker's own calls to a
registry (worker/registry_api.py): a name's `insecure`, `blocked` and `location`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


SYSTEM_DROP_INS = Path("/etc/containers/registries.conf.d")


@dataclass(frozen=True)
class Endpoint:
    """Where the container tools reach `registry/repository`, as registries.conf says."""

    name: str  # registry/repository, a `location` rewrite applied
    insecure: bool = False
    blocked: bool = False

    @property
    def registry(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else ""


def endpoint(name: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The [[registry]] entry of registries.conf (the file the runtimes read, then the
    drop-ins of registries.conf.d) whose prefix matches `name` best: its `insecure`,
    `blocked`, and `location` (which replaces the prefix). The v1 format's
    `registries.insecure` and `registries.block` lists count too."""
    env = dict(os.environ if environ is None else environ)
    entries: dict[str, dict[str, Any]] = {}
    for path in _config_files(env):
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for entry in data.get("registry") or []:
            if isinstance(entry, dict) and (entry.get("prefix") or entry.get("location")):
                entries[str(entry.get("prefix") or entry["location"])] = entry
        v1 = data.get("registries") or {}
        for key, flag in (("insecure", "insecure"), ("block", "blocked")):
            for host in (v1.get(key) or {}).get("registries") or []:
                entries.setdefault(str(host), {"location": str(host)})[flag] = True
    best = max((p for p in entries if _matches(p, name)), key=_specificity, default=None)
    if best is None:
        return Endpoint(name)
    entry = entries[best]
    location = str(entry.get("location") or "")
    rewritten = name
    if location and not best.startswith("*."):
        rewritten = location + name[len(best):]
    return Endpoint(rewritten, bool(entry.get("insecure")), bool(entry.get("blocked")))


def _config_files(env: Mapping[str, str]) -> list[Path]:
    main = current_file(dict(env))
    home = env.get("HOME", "/")
    drop_ins = [SYSTEM_DROP_INS, Path(home) / ".config" / "containers" / "registries.conf.d"]
    found = [main] if main else []
    for directory in drop_ins:
        with contextlib.suppress(OSError):
            found += sorted(p for p in directory.glob("*.conf") if p.is_file())
    return found


def _matches(prefix: str, name: str) -> bool:
    if prefix.startswith("*."):  # a host wildcard: *.example.com
        host = name.split("/", 1)[0]
        return host.endswith(prefix[1:])
    return name == prefix or name.startswith(prefix.rstrip("/") + "/")


def _specificity(prefix: str) -> int:
    return -1 if prefix.startswith("*.") else len(prefix)
