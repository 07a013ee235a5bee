"""The base-image watch's reads: the trigger's Dockerfile at the head of its default branch
(one commit fetched, depth 1) and the manifest digest of each of its FROM images
(`skopeo inspect --raw`, hashed as the registry does)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from slipway.config.models import AppConfig
from slipway.domain.loopback import is_loopback_registry
from slipway.domain.names import InvalidName, parse_image_ref
from slipway.store.records import StoredTrigger
from slipway.triggers.builds import clone_url, git_environment

COMMAND_TIMEOUT = 120.0
_FROM = re.compile(r"^\s*FROM\s+(?P<rest>.+)$", re.IGNORECASE)


class BaseImageError(Exception):
    """The Dockerfile or a base image could not be read; the message says which."""


def from_images(dockerfile: str) -> list[str]:
    """The FROM images of a Dockerfile, stages and `scratch` left out, in order; one that
    uses a build argument (${...}) cannot be watched and is left out too."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        words = [w for w in match.group("rest").split() if not w.startswith("--")]
        if not words:
            continue
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() in stages or image == "scratch" or "$" in image:
            continue
        if image not in images:
            images.append(image)
    return images


async def _run(argv: list[str], env: Mapping[str, str], what: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(*argv, env=dict(env),
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BaseImageError(f"{what} took more than {COMMAND_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise BaseImageError(f"{what} failed: {err.decode(errors='replace').strip()[-300:]}")
    return out


async def read_dockerfile(trigger: StoredTrigger, credentials: Mapping[str, str],
                          ref: str) -> str:
    spec = trigger.spec
    path = posixpath.normpath(posixpath.join(spec.get("context") or "",
                                             spec.get("dockerfile_path") or "Dockerfile"))
    url = clone_url(trigger.git_url, trigger.kind, credentials)
    full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    with tempfile.TemporaryDirectory(prefix="slipway-base-watch-") as scratch:
        env = git_environment(credentials, Path(scratch))
        repo = str(Path(scratch) / "repo")
        await _run(["git", "-c", "init.defaultBranch=main", "init", "--quiet", repo], env,
                   "git init")
        await _run(["git", "-C", repo, "fetch", "--quiet", "--depth", "1", "--no-tags",
                    "--", url, full], env, f"git fetch of {full} from {trigger.git_url}")
        out = await _run(["git", "-C", repo, "show", f"FETCH_HEAD:{path.lstrip('/')}"], env,
                         f"reading {path} at {full}")
    return out.decode(errors="replace")


async def image_digest(image: str, config: AppConfig) -> str:
    try:
        ref = parse_image_ref(image)
    except InvalidName as exc:
        raise BaseImageError(f"FROM {image}: {exc}") from None
    host = ref.registry
    argv = ["skopeo", "inspect", "--raw", "--retry-times", "2"]
    if host in config.INSECURE_REGISTRIES or (config.LOOPBACK_REGISTRIES
                                              and is_loopback_registry(host)):
        argv.append("--tls-verify=false")
    with tempfile.TemporaryDirectory(prefix="slipway-base-watch-") as scratch:
        login = (config.REGISTRY_CREDENTIALS or {}).get(host)
        if login is not None:
            auth = base64.b64encode(
                f"{login.username}:{login.password.get_secret_value()}".encode()).decode()
            authfile = Path(scratch) / "auth.json"
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"auths": {host: {"auth": auth}}}, f)
            argv += ["--authfile", str(authfile)]
        raw = await _run([*argv, f"docker://{image}"], os.environ, f"skopeo inspect {image}")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


async def base_image_digests(trigger: StoredTrigger, credentials: Mapping[str, str],
                             ref: str, config: AppConfig) -> dict[str, str]:
    dockerfile = await read_dockerfile(trigger, credentials, ref)
    return {image: await image_digest(image, config) for image in from_images(dockerfile)}
