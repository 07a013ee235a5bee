"""Fetch the build package (an http(s) download or a git checkout) into a directory,
and find the build context and Dockerfile inside it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import os
import posixpath
import shlex
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx

from slipway.worker.errors import BuildError
from slipway.worker.process import LineSink, child_environment, run_process
from slipway.worker.tracing import span
from slipway.worker.unpack import Limits, unpack_tar, unpack_zip

DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0)
TAR_TYPES = ("application/x-tar", "application/tar", "application/gzip", "application/x-gzip")
ZIP_TYPES = ("application/zip", "application/x-zip-compressed")


@functools.cache
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


def tls_context() -> ssl.SSLContext:
    """httpx's default verification (SSL_CERT_FILE, SSL_CERT_DIR, else certifi's CAs),
    made once: loading the CAs is a noticeable part of a small build's start."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return _tls_context(cafile, None if cafile else os.environ.get("SSL_CERT_DIR") or None)


def warm_up() -> None:
    """Do ahead what the first download would: load the CAs and import the transport
    (httpx imports it lazily). A standby worker calls this while it waits."""
    tls_context()
    for module in ("httpcore", "h11", "anyio._backends._asyncio"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def redact_url(url: str) -> str:
    """The URL without user:password and query (presigned URLs sign in the query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.scheme in ("", "file") or ("@" in url and not parts.hostname):
        return url.split("?", 1)[0]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def sniff(head: bytes, content_type: str) -> str:
    """'tar', 'zip' or 'dockerfile' from the first bytes (and the content type as a hint)."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar":
        return "tar"
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ZIP_TYPES:
        return "zip"
    if ctype in TAR_TYPES:
        return "tar"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of `head`
            raise BuildError(
                "the build package is neither a tar, tar.gz or zip archive nor a Dockerfile"
            ) from None
    return "dockerfile"


async def download(url: str, dest: Path, max_bytes: int) -> str:
    """Stream url to dest, refusing more than max_bytes; return the content type."""
    shown = redact_url(url)
    try:
        async with (
            httpx.AsyncClient(
                timeout=DOWNLOAD_TIMEOUT, follow_redirects=True, verify=tls_context()
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise BuildError(
                    f"could not download the build package from {shown}: "
                    f"HTTP {response.status_code}"
                )
            size = 0
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BuildError(
                            f"the build package at {shown} is larger than {max_bytes} bytes "
                            "(CONTEXT_MAX_BYTES)"
                        )
                    out.write(chunk)
            return response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise BuildError(f"could not download the build package from {shown}: {exc}") from None


def _strip(path: str) -> str:
    return path.replace("\\", "/").lstrip("/")


def _inside(root: Path, relative: str, what: str, shown: str | None = None) -> Path:
    """root/relative, refusing anything that leads outside root (lexically or by link)."""
    shown = relative if shown is None else shown
    normal = posixpath.normpath("/" + _strip(relative))  # leading "/" so ".." can't go past it
    if posixpath.normpath(_strip(relative) or ".").split("/")[0] == "..":
        raise BuildError(f"{what} {shown!r} leads outside the build package ('..')")
    path = root.joinpath(*[p for p in normal.split("/") if p])
    real = Path(os.path.realpath(path))
    if real != root and not real.is_relative_to(root):
        raise BuildError(f"{what} {shown!r} leads outside the build package (a link)")
    return path


@dataclass(frozen=True)
class BuildContext:
    directory: Path
    dockerfile: Path


def locate(package: Path, context: str, dockerfile_path: str) -> BuildContext:
    """The context directory and Dockerfile; both must stay inside the package.
    `context` is relative to the package, `dockerfile_path` to the context; a leading
    '/' means the package root, as Quay sends them."""
    root = Path(os.path.realpath(package))
    directory = _inside(root, context or "", "the build context")
    if not directory.is_dir():
        raise BuildError(f"the build context {context!r} is not a directory of the build package")
    relative_context = directory.relative_to(root).as_posix() if directory != root else ""
    joined = f"{relative_context}/{_strip(dockerfile_path or 'Dockerfile')}"
    dockerfile = _inside(root, joined, "the Dockerfile path", dockerfile_path)
    if not dockerfile.is_file():
        raise BuildError(
            f"the Dockerfile {dockerfile_path or 'Dockerfile'!r} was not found in the build "
            f"context {context or '/'!r}"
        )
    return BuildContext(directory, dockerfile)


async def fetch_url(
    url: str, package: Path, scratch: Path, limits: Limits, context: str, dockerfile_path: str
) -> str:
    """Download and unpack a package_url into `package`; the download's sha256 (hex), the
    source the provenance names."""
    blob = scratch / "package.download"
    with span("context fetch") as fetching:
        content_type = await download(url, blob, limits.max_bytes)
        if fetching is not None:
            fetching.set_attribute("slipway.context.bytes", blob.stat().st_size)
    with span("context unpack"):
        return await asyncio.to_thread(
            _unpack_download, blob, content_type, package, limits, context, dockerfile_path
        )


def _unpack_download(
    blob: Path,
    content_type: str,
    package: Path,
    limits: Limits,
    context: str,
    dockerfile_path: str,
) -> str:
    with blob.open("rb") as f:
        head = f.read(512)
    with blob.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    kind = sniff(head, content_type)
    package.mkdir(parents=True, exist_ok=True)
    if kind == "zip":
        unpack_zip(blob, package, limits)
    elif kind == "tar":
        unpack_tar(blob, package, limits)
    else:
        # a bare Dockerfile: it becomes the Dockerfile of the (otherwise empty) context
        relative = f"{_strip(context)}/{_strip(dockerfile_path or 'Dockerfile')}"
        target = _inside(package.resolve(), relative, "the Dockerfile path")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(blob, target)
    blob.unlink(missing_ok=True)
    return digest


def _write_key(key_dir: Path, private_key: str) -> Path:
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = key_dir / "id_git"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_key if private_key.endswith("\n") else private_key + "\n")
    return path


def _check_size(package: Path, limits: Limits) -> None:
    files = 0
    size = 0
    for dirpath, dirnames, filenames in os.walk(package):
        if ".git" in dirnames and Path(dirpath) == package:
            dirnames.remove(".git")
        for name in filenames:
            files += 1
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                size += os.path.getsize(path)
            if files > limits.max_files or size > limits.max_bytes:
                raise BuildError(
                    f"the git checkout is too big at {os.path.relpath(path, package)!r}: "
                    f"limits are {limits.max_files} files (CONTEXT_MAX_FILES) and "
                    f"{limits.max_bytes} bytes (CONTEXT_MAX_BYTES)"
                )


async def _shallow_fetch(url: str, sha: str, package: Path, env: dict[str, str],
                         sink: LineSink) -> bool:
    """Only the commit `sha` (depth 1), as a trigger's build needs; False when the server
    does not give a commit by its id."""
    await asyncio.to_thread(package.mkdir, parents=True, exist_ok=True)
    for args in (["-c", "init.defaultBranch=main", "init", "--quiet", str(package)],
                 ["-C", str(package), "fetch", "--depth", "1", "--no-tags", "--", url, sha]):
        # a refusal's lines are not the build's error: the full clone follows
        result = await run_process(["git", *args], sink, env=env, hold_errors=True)
        if result.returncode != 0:
            return False
    return True


async def fetch_git(
    url: str,
    sha: str,
    private_key: str,
    package: Path,
    scratch: Path,
    limits: Limits,
    sink: LineSink,
) -> None:
    """Fetch `sha` (shallow) or clone, check it out, update submodules. The key is only
    ever in a 0600 file."""
    extra = {"GIT_TERMINAL_PROMPT": "0"}
    if private_key:
        key = _write_key(scratch / "ssh", private_key)
        known_hosts = scratch / "ssh" / "known_hosts"
        extra["GIT_SSH_COMMAND"] = " ".join(
            [
                "ssh",
                "-F /dev/null",
                f"-i {shlex.quote(str(key))}",
                "-o IdentitiesOnly=yes",
                "-o BatchMode=yes",
                "-o StrictHostKeyChecking=accept-new",
                f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))}",
            ]
        )
    env = child_environment(extra)
    shown = redact_url(url)

    async def git(*args: str, what: str) -> None:
        result = await run_process(["git", *args], sink, env=env)
        if result.returncode != 0:
            raise BuildError(f"git {what} of {shown} failed: {result.error_text()}")

    if sha and await _shallow_fetch(url, sha, package, env, sink):
        await git("-C", str(package), "checkout", "--detach", "FETCH_HEAD",
                  what=f"checkout of {sha}")
    else:
        # a server that refuses a commit by id (protocol v0 without
        # uploadpack.allowReachableSHA1InWant): the whole history
        shutil.rmtree(package, ignore_errors=True)
        await git("clone", "--no-checkout", "--", url, str(package), what="clone")
        if sha:
            await git("-C", str(package), "checkout", "--detach", sha,
                      what=f"checkout of {sha}")
        else:
            await git("-C", str(package), "checkout", what="checkout")
    await git(
        "-C", str(package), "submodule", "update", "--init", "--recursive", what="submodule update"
    )
    await asyncio.to_thread(_check_size, package, limits)
