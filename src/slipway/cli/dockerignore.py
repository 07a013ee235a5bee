"""Pack a build context as tar.gz the way `docker build` does, honouring .dockerignore.

Patterns follow Docker's (moby/patternmatcher): one per line, `#` comments, paths cleaned
and relative to the context, `*` and `?` within one path part, `**` across parts, `!`
re-includes, the last matching pattern wins, and a pattern matching a directory excludes
everything below it. The Dockerfile and .dockerignore are always sent.
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".dockerignore"


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` line: re-include what matches
    regex: re.Pattern[str]

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _translate(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                if i + 1 >= len(pattern):
                    out.append(".*")
                else:
                    out.append("(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def parse(lines: Iterable[str]) -> list[Pattern]:
    patterns = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line).lstrip("/") if line else line
        if not line or line == ".":
            continue
        patterns.append(Pattern(line, exclusion, _translate(line)))
    return patterns


def read_ignore_file(context: Path) -> list[Pattern]:
    path = context / IGNORE_FILE
    if not path.is_file():
        return []
    return parse(path.read_text(encoding="utf-8", errors="replace").splitlines())


def excluded(patterns: list[Pattern], path: str) -> bool:
    """Is `path` (relative, '/'-separated) excluded? The path itself or one of its parent
    directories has to match; the last matching pattern decides."""
    parents = path.split("/")[:-1]
    result = False
    for pattern in patterns:
        hit = pattern.match(path) or any(
            pattern.match("/".join(parents[: i + 1])) for i in range(len(parents))
        )
        if hit:
            result = not pattern.exclusion
    return result


def walk(context: Path, patterns: list[Pattern], always: Iterable[str] = ()) -> Iterator[str]:
    """Relative paths (files, symlinks, empty dirs) to send, sorted, parents first."""
    keep = set(always)
    has_exceptions = any(p.exclusion for p in patterns)
    for root, dirs, files in os.walk(context):
        dirs.sort()
        rel_root = os.path.relpath(root, context)
        rel_root = "" if rel_root == "." else rel_root.replace(os.sep, "/")
        kept_dirs = []
        for name in dirs:
            rel = f"{rel_root}/{name}" if rel_root else name
            full = Path(root, name)
            if full.is_symlink():
                files.append(name)  # a link to a directory is sent as the link
                continue
            if excluded(patterns, rel):
                # an exception below may still re-include something
                if has_exceptions:
                    kept_dirs.append(name)
                continue
            yield rel
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        for name in sorted(files):
            rel = f"{rel_root}/{name}" if rel_root else name
            if rel in keep or not excluded(patterns, rel):
                yield rel


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # who owns the files here says nothing about the image; keep archives reproducible
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(
    context: Path,
    out: Path,
    *,
    dockerfile: str = "Dockerfile",
    extra: dict[str, Path] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write `context` as tar.gz to `out`; returns the number of entries. `extra` adds files
    from elsewhere (e.g. a Dockerfile outside the context) under the given names.
    `progress(bytes)` is called after each file is added, with its size."""
    patterns = read_ignore_file(context)
    count = 0
    # gzip's usual level: level 9 (tarfile's default) costs seconds on a large context
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        entries = [(context / rel, rel) for rel in walk(context, patterns,
                                                        always=(dockerfile, IGNORE_FILE))]
        entries += [(path, name) for name, path in (extra or {}).items()]
        for path, name in entries:
            tar.add(path, arcname=name, recursive=False, filter=_normalise)
            count += 1
            if progress is not None and not path.is_symlink() and path.is_file():
                progress(path.stat().st_size)
    return count


def context_size(context: Path) -> int:
    """Bytes of the files `pack` would send (for a progress bar's total)."""
    patterns = read_ignore_file(context)
    total = 0
    for rel in walk(context, patterns, always=(IGNORE_FILE,)):
        path = context / rel
        if not path.is_symlink() and path.is_file():
            total += path.stat().st_size
    return total
