"""Safe extraction of a build package (tar, tar.gz/bz2/xz, zip) into a directory.

Refused, with the member named: absolute paths, `..` components, symbolic or hard links
that lead outside the target, device files and fifos, writes through a link, and
archives past the size or file-count limit. A compression bomb stops at the limit (or
at an absurd compression ratio) without being written out in full.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from slipway.worker.errors import BuildError

CHUNK = 1024 * 1024
# Past this many unpacked bytes, refuse a package that expands more than MAX_RATIO times
# its compressed size: real contexts compress maybe 10:1, a bomb 1000:1.
RATIO_FLOOR = 64 * 1024 * 1024
MAX_RATIO = 200


class UnpackError(BuildError):
    """The package is unsafe or too big; the message names the member."""


@dataclass
class Limits:
    max_bytes: int
    max_files: int


class _CountingReader:
    """Counts the compressed bytes read, for the ratio guard."""

    def __init__(self, raw: BinaryIO | None = None) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        assert self.raw is not None
        data = self.raw.read(size)
        self.count += len(data)
        return data


class _Extractor:
    def __init__(self, dest: Path, limits: Limits, compressed: _CountingReader) -> None:
        self.dest = dest.resolve()
        self.limits = limits
        self.compressed = compressed
        self.files = 0
        self.bytes = 0

    # -- checks ------------------------------------------------------------------------
    def member_path(self, name: str) -> tuple[str, Path]:
        """Normalise an archive name to a relative path inside dest, or refuse it."""
        if "\x00" in name:
            raise UnpackError(f"refusing archive member {name!r}: NUL byte in its name")
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UnpackError(f"refusing archive member {name!r}: absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UnpackError(f"refusing archive member {name!r}: '..' leads outside the package")
        rel = "/".join(parts)
        return rel, self.dest.joinpath(*parts) if parts else self.dest

    def inside(self, path: Path) -> bool:
        return path == self.dest or path.is_relative_to(self.dest)

    def parent_ready(self, name: str, target: Path) -> None:
        """Create the parent dirs; refuse when an existing link makes them lead outside."""
        parent = target.parent
        if not self.inside(Path(os.path.realpath(parent))):
            raise UnpackError(f"refusing archive member {name!r}: its directory is a link outside")
        parent.mkdir(parents=True, exist_ok=True)
        if not self.inside(Path(os.path.realpath(parent))):
            raise UnpackError(f"refusing archive member {name!r}: its directory is a link outside")
        if target.is_symlink():
            # never write through a link an earlier member planted
            target.unlink()

    def count_file(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnpackError(
                f"refusing archive member {name!r}: the package has more than "
                f"{self.limits.max_files} files (CONTEXT_MAX_FILES)"
            )

    def add_bytes(self, name: str, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise UnpackError(
                f"refusing archive member {name!r}: the package unpacks to more than "
                f"{self.limits.max_bytes} bytes (CONTEXT_MAX_BYTES)"
            )
        if self.bytes > RATIO_FLOOR and self.bytes > MAX_RATIO * max(self.compressed.count, 1):
            raise UnpackError(
                f"refusing archive member {name!r}: the package expands more than "
                f"{MAX_RATIO} times its compressed size (an archive bomb?)"
            )

    # -- writers -----------------------------------------------------------------------
    def write_file(self, name: str, target: Path, src: IO[bytes], mode: int) -> None:
        self.parent_ready(name, target)
        if target.is_dir():
            raise UnpackError(f"refusing archive member {name!r}: a directory of that name exists")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                self.add_bytes(name, len(chunk))
                out.write(chunk)
        os.chmod(target, (mode & 0o777) | 0o600 if mode else 0o644)

    def make_dir(self, name: str, target: Path) -> None:
        if target.is_symlink():
            raise UnpackError(f"refusing archive member {name!r}: a link of that name exists")
        if target != self.dest:
            self.parent_ready(name, target)
        target.mkdir(exist_ok=True)

    def make_symlink(self, name: str, rel: str, target: Path, linkname: str) -> None:
        if linkname.startswith("/"):
            raise UnpackError(
                f"refusing archive member {name!r}: symbolic link to absolute path {linkname!r}"
            )
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), linkname))
        if lexical == ".." or lexical.startswith("../"):
            raise UnpackError(
                f"refusing archive member {name!r}: symbolic link {linkname!r} points outside"
            )
        self.parent_ready(name, target)
        if target.exists() or target.is_symlink():
            if target.is_dir() and not target.is_symlink():
                raise UnpackError(f"refusing archive member {name!r}: replaces a directory")
            target.unlink()
        os.symlink(linkname, target)
        if not self.inside(Path(os.path.realpath(target))):
            target.unlink()
            raise UnpackError(
                f"refusing archive member {name!r}: symbolic link {linkname!r} points outside"
            )

    def make_hardlink(self, name: str, target: Path, linkname: str) -> None:
        try:
            _, source = self.member_path(linkname)
        except UnpackError:
            raise UnpackError(
                f"refusing archive member {name!r}: hard link to {linkname!r} outside the package"
            ) from None
        real = Path(os.path.realpath(source))
        if not self.inside(real):
            raise UnpackError(
                f"refusing archive member {name!r}: hard link to {linkname!r} outside the package"
            )
        if not real.is_file():
            raise UnpackError(
                f"refusing archive member {name!r}: hard link to {linkname!r}, which is not a "
                "file earlier in the archive"
            )
        self.parent_ready(name, target)
        if target.exists():
            target.unlink()
        self.add_bytes(name, real.stat().st_size)
        os.link(real, target)

    # -- formats -----------------------------------------------------------------------
    def tar(self, archive: tarfile.TarFile) -> None:
        for member in _iter_tar(archive):
            with _member_errors(member.name):
                self.tar_member(archive, member)

    def tar_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        self.count_file(name)
        rel, target = self.member_path(name)
        if member.isdir():
            self.make_dir(name, target)
        elif member.isreg():
            src = archive.extractfile(member)
            assert src is not None
            if not rel:
                raise UnpackError(f"refusing archive member {name!r}: empty name")
            self.write_file(name, target, src, member.mode)
        elif member.issym():
            self.make_symlink(name, rel, target, member.linkname)
        elif member.islnk():
            self.make_hardlink(name, target, member.linkname)
        else:
            kind = (
                "device file"
                if (member.ischr() or member.isblk())
                else ("fifo" if member.isfifo() else "special file")
            )
            raise UnpackError(f"refusing archive member {name!r}: {kind}")

    def zip(self, archive: zipfile.ZipFile) -> None:
        for info in archive.infolist():
            with _member_errors(info.filename):
                self.zip_member(archive, info)

    def zip_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        name = info.filename
        self.count_file(name)
        rel, target = self.member_path(name)
        mode = (info.external_attr >> 16) & 0xFFFF
        if info.is_dir():
            self.make_dir(name, target)
        elif stat.S_ISLNK(mode):
            with archive.open(info) as src:
                link = src.read(4096).decode("utf-8", "replace")
            self.make_symlink(name, rel, target, link)
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: made without unix modes
            raise UnpackError(f"refusing archive member {name!r}: special file")
        else:
            self.compressed.count += info.compress_size
            with archive.open(info) as src:
                self.write_file(name, target, src, stat.S_IMODE(mode) or 0o644)


@contextlib.contextmanager
def _member_errors(name: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise UnpackError(f"cannot unpack archive member {name!r}: {exc.strerror or exc}") from None


def _iter_tar(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from archive
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnpackError(f"the tar archive is damaged: {exc}") from None


def unpack_tar(path: Path, dest: Path, limits: Limits) -> None:
    """Extract a tar (optionally gzip/bzip2/xz compressed) in one streaming pass."""
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        ex = _Extractor(dest, limits, counter)
        try:
            with tarfile.open(fileobj=counter, mode="r|*") as archive:  # type: ignore[call-overload]
                ex.tar(archive)
        except tarfile.ReadError as exc:
            raise UnpackError(f"the package is not a readable tar archive: {exc}") from None
        except (EOFError, zlib_error()) as exc:
            raise UnpackError(f"the tar archive is damaged: {exc}") from None


def unpack_zip(path: Path, dest: Path, limits: Limits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnpackError(f"the package is not a readable zip archive: {exc}") from None
    with archive:
        try:
            _Extractor(dest, limits, _CountingReader()).zip(archive)
        except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
            raise UnpackError(f"the zip archive is damaged: {exc}") from None


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error
