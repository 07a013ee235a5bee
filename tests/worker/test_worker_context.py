"""Fetching the build package: archive sniffing, bare Dockerfiles, size limits, and
context / Dockerfile paths that must stay inside the package."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.archives import tar_gz
from support.fileserver import serve_files

from slipway.worker.context import fetch_git, fetch_url, locate, redact_url, sniff
from slipway.worker.errors import BuildError
from slipway.worker.unpack import Limits

LIMITS = Limits(max_bytes=10 * 1024 * 1024, max_files=100)
DOCKERFILE = b"FROM localhost/slipway-base:latest\nRUN echo hi\n"


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_sniff_recognises_archives_by_content_and_dockerfiles_as_text() -> None:
    assert sniff(tar_gz({"a": b"x"})[:512], "application/octet-stream") == "tar"
    assert sniff(zip_bytes({"a": b"x"})[:512], "") == "zip"
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        info = tarfile.TarInfo("a")
        tar.addfile(info, io.BytesIO(b""))
    assert sniff(plain.getvalue()[:512], "text/plain") == "tar"
    assert sniff(DOCKERFILE, "application/octet-stream") == "dockerfile"
    with pytest.raises(BuildError, match="neither a tar"):
        sniff(b"\x00\xff\xfe\x80" * 100, "application/octet-stream")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (tar_gz({"Dockerfile": DOCKERFILE, "sub/f": b"1"}), "application/gzip"),
        (zip_bytes({"Dockerfile": DOCKERFILE, "sub/f": b"1"}), "application/zip"),
        (tar_gz({"Dockerfile": DOCKERFILE, "sub/f": b"1"}), "application/octet-stream"),
    ],
    ids=["tar.gz", "zip", "tar.gz-untyped"],
)
async def test_fetch_url_unpacks_archives(tmp_path: Path, body: bytes, content_type: str) -> None:
    with serve_files({"/p": (body, content_type)}) as base:
        await fetch_url(f"{base}/p?sig=abc", tmp_path / "pkg", tmp_path, LIMITS, "", "Dockerfile")
    ctx = locate(tmp_path / "pkg", "", "Dockerfile")
    assert ctx.dockerfile.read_bytes() == DOCKERFILE
    assert (tmp_path / "pkg" / "sub" / "f").read_bytes() == b"1"


async def test_bare_dockerfile_becomes_the_dockerfile(tmp_path: Path) -> None:
    with serve_files({"/Dockerfile": (DOCKERFILE, "text/plain")}) as base:
        await fetch_url(
            f"{base}/Dockerfile", tmp_path / "pkg", tmp_path, LIMITS, "/", "/Dockerfile"
        )
    assert locate(tmp_path / "pkg", "/", "/Dockerfile").dockerfile.read_bytes() == DOCKERFILE


async def test_download_over_the_limit_is_refused(tmp_path: Path) -> None:
    with (
        serve_files({"/big": (b"x" * 4096, "application/octet-stream")}) as base,
        pytest.raises(BuildError, match="larger than 1000 bytes"),
    ):
        await fetch_url(f"{base}/big", tmp_path / "pkg", tmp_path, Limits(1000, 10), "", "")


async def test_download_error_names_the_url_without_secrets(tmp_path: Path) -> None:
    with serve_files({}) as base, pytest.raises(BuildError) as err:
        await fetch_url(
            f"{base}/missing?X-Amz-Signature=s3cr3t", tmp_path / "p", tmp_path, LIMITS, "", ""
        )
    assert "HTTP 404" in str(err.value) and "s3cr3t" not in str(err.value)
    assert redact_url("https://u:pw@host:8443/x?sig=1") == "https://host:8443/x"


def test_context_and_dockerfile_must_stay_inside_the_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "app").mkdir(parents=True)
    (pkg / "app" / "Dockerfile.prod").write_bytes(DOCKERFILE)
    (tmp_path / "Dockerfile").write_bytes(DOCKERFILE)
    os.symlink(str(tmp_path), pkg / "up")

    ctx = locate(pkg, "/app", "Dockerfile.prod")
    assert ctx.directory == pkg.resolve() / "app"
    assert locate(pkg, "app", "../app/Dockerfile.prod").dockerfile == ctx.dockerfile
    with pytest.raises(BuildError, match=r"build context '\.\./'.*outside"):
        locate(pkg, "../", "Dockerfile")
    with pytest.raises(BuildError, match=r"Dockerfile path.*outside"):
        locate(pkg, "app", "../../Dockerfile")
    with pytest.raises(BuildError, match=r"build context 'up'.*outside"):
        locate(pkg, "up", "Dockerfile")
    with pytest.raises(BuildError, match=r"Dockerfile path.*outside"):
        locate(pkg, "", "up/Dockerfile")
    with pytest.raises(BuildError, match="'Dockerfile' was not found"):
        locate(pkg, "app", "")
    with pytest.raises(BuildError, match="not a directory"):
        locate(pkg, "nope", "")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        },
    ).stdout.strip()


async def test_git_checkout_of_a_sha_with_submodules(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    git("init", "-q", "-b", "main", cwd=sub)
    (sub / "lib.txt").write_text("lib")
    git("add", ".", cwd=sub)
    git("commit", "-qm", "lib", cwd=sub)

    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "Dockerfile").write_bytes(DOCKERFILE)
    git("add", ".", cwd=repo)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor", cwd=repo)
    git("commit", "-qm", "first", cwd=repo)
    first = git("rev-parse", "HEAD", cwd=repo)
    (repo / "Dockerfile").write_text("FROM later\n")
    git("commit", "-qam", "second", cwd=repo)

    lines: list[str] = []

    async def sink(line: str) -> None:
        lines.append(line)

    os.environ["GIT_CONFIG_COUNT"] = "1"
    os.environ["GIT_CONFIG_KEY_0"] = "protocol.file.allow"
    os.environ["GIT_CONFIG_VALUE_0"] = "always"
    try:
        await fetch_git(str(repo), first, "", tmp_path / "pkg", tmp_path, LIMITS, sink)
    finally:
        for k in ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"):
            del os.environ[k]
    assert (tmp_path / "pkg" / "Dockerfile").read_bytes() == DOCKERFILE
    assert (tmp_path / "pkg" / "vendor" / "lib.txt").read_text() == "lib"


async def test_git_private_key_goes_through_a_0600_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fake ssh records how git called it (and the key file's mode), then fails
    record = tmp_path / "ssh-record"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ssh"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {record}\n'
        'while [ $# -gt 0 ]; do if [ "$1" = -i ]; then '
        f'stat -c %a "$2" >> {record}; cat "$2" >> {record}; fi; shift; done\n'
        "echo 'Permission denied (publickey).' >&2\nexit 255\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    key = "\n".join(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "AAAAsecretkeymaterial",
            "-----END OPENSSH PRIVATE KEY-----",
        ]
    )
    lines: list[str] = []

    async def sink(line: str) -> None:
        lines.append(line)

    with pytest.raises(BuildError) as err:
        await fetch_git(
            "git@git.example.com:ns/repo.git", "abc", key, tmp_path / "pkg", tmp_path, LIMITS, sink
        )
    assert "Could not read from remote repository" in str(err.value)
    assert "Permission denied (publickey)." in lines  # ssh's own words reach the build log
    assert "secretkeymaterial" not in str(err.value)
    recorded = record.read_text().splitlines()
    assert "IdentitiesOnly=yes" in recorded[0] and "-i " in recorded[0]
    assert recorded[1] == "600"
    assert "AAAAsecretkeymaterial" in recorded  # the key reached ssh through the file
    assert not any("secretkeymaterial" in line for line in lines)
