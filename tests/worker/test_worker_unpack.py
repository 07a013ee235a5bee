"""Safe unpacking of build packages: every escape is refused, naming the member, and
nothing lands outside the target directory."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from slipway.worker import unpack as unpack_mod
from slipway.worker.unpack import Limits, UnpackError, unpack_tar, unpack_zip

BIG = Limits(max_bytes=100 * 1024 * 1024, max_files=1000)


def make_tar(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], gz: bool = False
) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def reg(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where we unpack; nothing may appear in outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = outside / "work" / "dest"
    dest.mkdir(parents=True)
    return dest, outside


def only_dest_changed(dest: Path, outside: Path) -> None:
    for root, _dirs, files in os.walk(outside):
        for f in files:
            full = Path(root) / f
            assert (
                full.is_relative_to(dest)
                or full.name.endswith(".tar")
                or full.name.endswith(".zip")
            ), f"{full} written outside the target"


def test_plain_tar_unpacks_files_dirs_and_inside_links(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    sub = tarfile.TarInfo("sub")
    sub.type = tarfile.DIRTYPE
    archive = make_tar(
        tmp_path / "ok.tar",
        [
            (reg("./Dockerfile"), b"FROM scratch\n"),
            (sub, None),
            (reg("sub/a.txt"), b"hello"),
            (special("sub/link", tarfile.SYMTYPE, "a.txt"), None),
            (special("hard", tarfile.LNKTYPE, "sub/a.txt"), None),
        ],
        gz=True,
    )
    unpack_tar(archive, dest, BIG)
    assert (dest / "Dockerfile").read_bytes() == b"FROM scratch\n"
    assert (dest / "sub" / "link").read_bytes() == b"hello"
    assert (dest / "hard").read_bytes() == b"hello"
    only_dest_changed(dest, outside)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (reg("../evil.txt"), "'..'"),
        (reg("a/../../evil.txt"), "'..'"),
        (reg("/tmp/evil-absolute.txt"), "absolute path"),
        (special("escape", tarfile.SYMTYPE, "../../evil"), "points outside"),
        (special("abs-link", tarfile.SYMTYPE, "/etc/passwd"), "absolute path"),
        (special("hard", tarfile.LNKTYPE, "../evil.txt"), "hard link"),
        (special("hard-abs", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (special("dev-null", tarfile.CHRTYPE), "device file"),
        (special("disk", tarfile.BLKTYPE), "device file"),
        (special("pipe", tarfile.FIFOTYPE), "fifo"),
    ],
    ids=lambda v: v.name if isinstance(v, tarfile.TarInfo) else None,
)
def test_escaping_members_are_refused_by_name(
    tmp_path: Path, sandbox: tuple[Path, Path], member: tarfile.TarInfo, reason: str
) -> None:
    dest, outside = sandbox
    data = b"evil" if member.isreg() else None
    archive = make_tar(tmp_path / "bad.tar", [(reg("fine.txt"), b"ok"), (member, data)])
    with pytest.raises(UnpackError) as err:
        unpack_tar(archive, dest, BIG)
    assert repr(member.name) in str(err.value)
    assert reason in str(err.value)
    only_dest_changed(dest, outside)
    assert not Path("/tmp/evil-absolute.txt").exists()


def test_write_through_an_inside_symlink_to_a_dir_outside_is_refused(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, outside = sandbox
    # "lnk" -> ".." is outside; the lexical check already refuses it, so plant a link
    # chain that only escapes once resolved: a -> b, then b -> ../.. (refused by name)
    archive = make_tar(
        tmp_path / "chain.tar",
        [
            (special("a", tarfile.SYMTYPE, "b"), None),
            (special("b", tarfile.SYMTYPE, "../.."), None),
            (reg("a/evil.txt"), b"evil"),
        ],
    )
    with pytest.raises(UnpackError, match="'b'"):
        unpack_tar(archive, dest, BIG)
    only_dest_changed(dest, outside)


def test_member_replacing_a_symlink_writes_a_file_not_through_it(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, _ = sandbox
    archive = make_tar(
        tmp_path / "replace.tar",
        [
            (reg("target.txt"), b"original"),
            (special("f", tarfile.SYMTYPE, "target.txt"), None),
            (reg("f"), b"replaced"),
        ],
    )
    unpack_tar(archive, dest, BIG)
    assert (dest / "target.txt").read_bytes() == b"original"
    assert not (dest / "f").is_symlink()
    assert (dest / "f").read_bytes() == b"replaced"


def test_gzip_bomb_stops_at_the_size_limit(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    path = tmp_path / "bomb.tar.gz"
    size = 64 * 1024 * 1024  # 64 MiB of zeros, ~64 KiB compressed
    info = reg("zeros.bin")
    info.size = size
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w") as tar:

        class Zeros(io.RawIOBase):
            left = size

            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:  # type: ignore[override]
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Zeros()))
    assert path.stat().st_size < 1024 * 1024
    limit = 4 * 1024 * 1024
    with pytest.raises(UnpackError, match=r"'zeros.bin'.*more than 4194304 bytes"):
        unpack_tar(path, dest, Limits(max_bytes=limit, max_files=10))
    written = dest / "zeros.bin"
    assert not written.exists() or written.stat().st_size <= limit
    only_dest_changed(dest, outside)


def test_compression_ratio_guard_stops_a_bomb_below_the_size_limit(
    tmp_path: Path, sandbox: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest, _ = sandbox
    monkeypatch.setattr(unpack_mod, "RATIO_FLOOR", 1024 * 1024)
    data = bytes(16 * 1024 * 1024)
    archive = make_tar(tmp_path / "ratio.tar.gz", [(reg("zeros.bin"), data)], gz=True)
    with pytest.raises(UnpackError, match=r"'zeros.bin'.*expands more than"):
        unpack_tar(archive, dest, Limits(max_bytes=1024**3, max_files=10))
    assert (dest / "zeros.bin").stat().st_size < len(data)


def test_too_many_files_is_refused_naming_the_first_extra(
    tmp_path: Path, sandbox: tuple[Path, Path]
) -> None:
    dest, _ = sandbox
    archive = make_tar(tmp_path / "many.tar", [(reg(f"f{i}"), b"x") for i in range(6)])
    with pytest.raises(UnpackError, match=r"'f5'.*more than 5 files"):
        unpack_tar(archive, dest, Limits(max_bytes=1024, max_files=5))


def test_damaged_archive_says_so(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    archive = make_tar(tmp_path / "ok.tar.gz", [(reg("a"), b"x" * 10000)], gz=True)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(UnpackError, match=r"damaged|not a readable"):
        unpack_tar(cut, dest, BIG)


def make_zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def test_zip_unpacks_and_refuses_escapes(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    ok = make_zip(tmp_path / "ok.zip", [("Dockerfile", b"FROM scratch\n", 0o100644)])
    unpack_zip(ok, dest, BIG)
    assert (dest / "Dockerfile").read_text() == "FROM scratch\n"

    for name, data, mode, reason in [
        ("../evil.txt", b"x", 0o100644, "'..'"),
        ("/abs.txt", b"x", 0o100644, "absolute"),
        ("link", b"../../evil", 0o120777, "points outside"),
    ]:
        bad = make_zip(tmp_path / f"bad{len(reason)}.zip", [(name, data, mode)])
        with pytest.raises(UnpackError) as err:
            unpack_zip(bad, dest, BIG)
        assert repr(name) in str(err.value) and reason in str(err.value)
    only_dest_changed(dest, outside)


def test_zip_bomb_stops_at_the_limit(tmp_path: Path, sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    bomb = make_zip(tmp_path / "bomb.zip", [("zeros", bytes(8 * 1024 * 1024), 0o100644)])
    with pytest.raises(UnpackError, match=r"'zeros'.*more than 1048576 bytes"):
        unpack_zip(bomb, dest, Limits(max_bytes=1024 * 1024, max_files=10))
