"""Where `slipway build` takes its context from: a directory, a git repository (cloned
here, with the user's own git access, then sent like a directory), or `-`: a tar archive,
or a lone Dockerfile, on standard input (as `docker build -`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slipway.cli.client import CHUNK, CliError

# docker's rule: git://, git@, ssh:// and file:// URLs, and http(s) URLs ending in .git
GIT_URL = re.compile(r"^(git://|git@|ssh://|file://|https?://[^#]+\.git(#|$))")
SHA = re.compile(r"^[0-9a-f]{7,40}$")
ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def is_git_url(value: str) -> bool:
    return bool(GIT_URL.match(value))


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str  # branch, tag or commit; "" = the default branch
    subdir: str  # the context inside the repository; "" = its root


def parse_git(value: str) -> GitSource:
    """URL[#REF[:SUBDIR]], docker's syntax."""
    url, _, fragment = value.partition("#")
    ref, _, subdir = fragment.partition(":")
    subdir = subdir.strip("/")
    if ".." in subdir.split("/"):
        raise CliError(f"{value}: the sub-directory {subdir!r} leaves the repository ('..')")
    return GitSource(url, ref, subdir)


def _git(args: list[str], what: str) -> None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise CliError("git is not installed: install it to build from a git URL") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise CliError(f"git {what} failed: {output}")


def clone(source: GitSource, into: Path) -> Path:
    """Clone (shallow where the ref allows) and return the context directory; the
    repository's .git is left out of the context."""
    if source.ref and SHA.match(source.ref):
        _git(["clone", "--quiet", "--", source.url, str(into)], f"clone of {source.url}")
        _git(["-C", str(into), "checkout", "--quiet", "--detach", source.ref],
             f"checkout of {source.ref}")
    else:
        branch = ["--branch", source.ref] if source.ref else []
        _git(["clone", "--quiet", "--depth", "1", *branch, "--", source.url, str(into)],
             f"clone of {source.url}" + (f" at {source.ref}" if source.ref else ""))
    _git(["-C", str(into), "submodule", "--quiet", "update", "--init", "--recursive",
          "--depth", "1"], "submodule update")
    shutil.rmtree(into / ".git", ignore_errors=True)
    context = into / source.subdir if source.subdir else into
    if not context.is_dir():
        raise CliError(f"{source.url}: no directory {source.subdir!r} in the repository")
    return context


def read_stdin(
    stdin: BinaryIO, out: Path, dockerfile: str, progress: Callable[[int], None]
) -> str:
    """Copy standard input to `out`: a tar archive as it is (after checking the Dockerfile
    is in it), a Dockerfile alone as a tar.gz holding it. Returns the archive's MIME type."""
    raw = out.with_suffix(".stdin")
    with raw.open("wb") as fh:
        while block := stdin.read(CHUNK):
            fh.write(block)
            progress(len(block))
    with raw.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise CliError("-: standard input is empty; pipe a tar archive or a Dockerfile in, "
                       "e.g. `tar -c . | slipway build - -t ...`")
    if head.startswith(ARCHIVE_MAGIC) or head[257:262] == b"ustar":
        _check_archive(raw, dockerfile)
        raw.replace(out)
        return "application/gzip" if head.startswith(b"\x1f\x8b") else "application/x-tar"
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo(dockerfile)
        info.size = raw.stat().st_size
        info.mode = 0o644
        with raw.open("rb") as fh:
            tar.addfile(info, fh)
    raw.unlink()
    return "application/gzip"


def _check_archive(path: Path, dockerfile: str) -> None:
    try:
        with tarfile.open(path, "r:*") as tar:
            names = {m.name.removeprefix("./").rstrip("/") for m in tar.getmembers()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CliError(f"-: standard input is not a readable tar archive: {exc}") from None
    if dockerfile not in names:
        raise CliError(f"-: the archive on standard input has no {dockerfile}; add it, or "
                       "name the Dockerfile inside the archive with -f PATH")
