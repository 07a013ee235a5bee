"""Credentials for the worker's own calls to a registry (worker/registry_api.py), found as
the container tools find them: the build's push credentials when it has some, else the
host's auth files and their credential helpers; and the Bearer-token exchange a
registry's 401 challenge asks for (the Docker registry token protocol)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from slipway.worker.errors import BuildError
from slipway.worker.runtimes.base import Credentials

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    """A WWW-Authenticate header: `Basic realm=...` or `Bearer realm=...,service=...`."""

    scheme: str  # lower case
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    return Challenge(scheme.lower(), {m[1].lower(): m[2] if m[2] is not None else m[3]
                                      for m in _PARAM.finditer(rest)})


def basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


async def bearer_token(client: httpx.AsyncClient, challenge: Challenge, scope: str,
                       creds: Credentials | None) -> str:
    """The token the challenge's realm gives for `scope` (with the credentials, when there
    are some: anonymous otherwise). BuildError, naming only the realm's host, when it
    refuses."""
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise BuildError(f"the registry's Bearer challenge names no usable realm ({realm!r})")
    params = {"scope": scope}
    if challenge.params.get("service"):
        params["service"] = challenge.params["service"]
    headers = {"Authorization": basic(creds)} if creds else {}
    where = httpx.URL(realm).host
    try:
        answer = await client.get(realm, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise BuildError(f"the registry's token service at {where}: "
                         f"{type(exc).__name__}") from None
    if answer.status_code != 200:
        raise BuildError(f"the registry's token service at {where} answered "
                         f"{answer.status_code}" + ("" if creds else " (no credentials)"))
    with contextlib.suppress(ValueError, AttributeError):
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        if isinstance(token, str) and token:
            return token
    raise BuildError(f"the registry's token service at {where} gave no token")


def auth_files(environ: Mapping[str, str]) -> list[Path]:
    """The auth files containers/image reads, in its order (REGISTRY_AUTH_FILE alone when
    set)."""
    if environ.get("REGISTRY_AUTH_FILE"):
        return [Path(environ["REGISTRY_AUTH_FILE"])]
    home = Path(environ.get("HOME", "/"))
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [config / "containers" / "auth.json", home / ".docker" / "config.json",
             home / ".dockercfg"]
    if environ.get("XDG_RUNTIME_DIR"):
        files.insert(0, Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return files


async def host_credentials(name: str, environ: Mapping[str, str] | None = None
                           ) -> Credentials | None:
    """The host's credentials for `name` (registry/repository): the first auth file that
    has a credential helper for its registry (the helper is asked), or an `auths` entry
    for it, the most specific key first (registry/repository/..., then registry)."""
    env = dict(os.environ if environ is None else environ)
    registry = name.split("/", 1)[0]
    parts = name.split("/")
    keys = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for path in auth_files(env):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        helper = (data.get("credHelpers") or {}).get(registry)
        if isinstance(helper, str) and helper:
            return await _from_helper(helper, registry, env)
        auths = data.get("auths") if path.name != ".dockercfg" else data
        if not isinstance(auths, dict):
            continue
        normalized = {_normalize(k): v for k, v in auths.items()}
        for key in keys:
            if (creds := _decode(normalized.get(key))) is not None:
                return creds
    return None


def _normalize(key: str) -> str:
    """A legacy key ("https://registry/v1/") as the registry's name (Docker Hub's, as
    `docker login` writes it: docker.io)."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key.removeprefix(scheme).split("/", 1)[0]
    return "docker.io" if key in ("index.docker.io", "registry-1.docker.io") else key


def _decode(entry: object) -> Credentials | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
        return None
    try:
        username, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return Credentials(username, password) if sep and username else None


async def _from_helper(helper: str, registry: str, env: Mapping[str, str]
                       ) -> Credentials | None:
    """`docker-credential-HELPER get` (the credential helpers' protocol); None when it
    has nothing for the registry."""
    try:
        proc = await asyncio.create_subprocess_exec(
            f"docker-credential-{helper}", "get", env=dict(env),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        raise BuildError(f"the credential helper docker-credential-{helper} the host's auth "
                         f"file names for {registry} is not installed") from None
    out, _ = await proc.communicate(registry.encode())
    if proc.returncode != 0:
        return None
    with contextlib.suppress(ValueError, AttributeError):
        answer = json.loads(out)
        username, secret = answer.get("Username"), answer.get("Secret")
        if isinstance(username, str) and isinstance(secret, str) and username and secret:
            return Credentials(username, secret)
    return None
