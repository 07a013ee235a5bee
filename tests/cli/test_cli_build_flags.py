"""`slipway build` and friends as scripts use them: --json, -q, --iidfile, output without
wrapping or colour in a pipe, an unknown repository said so, the registry and the token's
scope checked before the upload, upload sizes in MB, --label/--no-cache/--pull reaching the
build, and the context from a git URL or from standard input."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from support.api_app import LiveApi
from support.enqueue import enqueue
from test_cli_builds import DIGEST, play, write
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.store.records import NewBuild

SLIPWAY = Path(sys.executable).parent / "slipway"
TARGET = "127.0.0.1:5000/demo/hello"
DEMO_WRITE = {"demo": "write"}


def env_for(live: LiveApi, tok: str) -> dict[str, str]:
    return {"SLIPWAY_URL": live.url, "SLIPWAY_TOKEN": tok}


def build_with(live: LiveApi, tok: str, args: list[str], *, succeed: bool = True,
               stdin: bytes | None = None) -> tuple[int, str, str, object]:
    """Run `slipway build ARGS` while the test plays the manager; (exit, stdout, stderr,
    the build record)."""
    assert live.env is not None and live.loop is not None
    played = asyncio.run_coroutine_threadsafe(play(live.env, succeed=succeed), live.loop)
    result = CliRunner().invoke(app, ["build", *args], env=env_for(live, tok), input=stdin)
    record, _ = played.result(30)
    return result.exit_code, result.stdout, result.stderr, record


def uploads(live: LiveApi) -> int:
    """File drops the server was asked for (the CLI's first step of an upload)."""
    from sqlalchemy import func, select

    from slipway.store.schema import uploads as table

    async def count() -> int:
        async with live.env.store.db.read() as conn:  # type: ignore[union-attr]
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)

    return int(live.run(count()))


def test_quiet_prints_only_the_digest_and_iidfile_gets_it(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n"})
    iid = tmp_path / "out" / "image.iid"
    iid.parent.mkdir()
    code, out, err, _ = build_with(
        live, tok, [str(tmp_path / "ctx"), "-t", TARGET, "-q", "--iidfile", str(iid)])
    assert code == 0, err
    assert out == DIGEST + "\n"
    assert iid.read_text() == DIGEST


def test_quiet_failure_says_why_on_stderr_only(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\nRUN false\n"})
    code, out, err, _ = build_with(live, tok, [str(tmp_path / "ctx"), "-t", TARGET, "-q"],
                                   succeed=False)
    assert code == 1 and out == ""
    assert "RUN false: exit status 1" in err
    assert "hello from RUN" in err  # the end of the log, to see what went wrong


def test_json_output_of_build_builds_and_logs(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n"})
    code, out, err, record = build_with(
        live, tok, [str(tmp_path / "ctx"), "-t", TARGET, "--json", "--label", "team=a b",
                    "--label", "org.opencontainers.image.source=https://x/y", "--no-cache",
                    "--pull"])
    assert code == 0, err
    final = json.loads(out)  # stdout is the final build, nothing else
    assert final["phase"] == "complete" and final["image_digest"] == DIGEST
    assert final["options"] == {"no_cache": True, "pull": True, "labels": {
        "team": "a b", "org.opencontainers.image.source": "https://x/y"}}
    assert record.options == final["options"]  # type: ignore[attr-defined]
    assert "hello from RUN" in err  # the log went to stderr
    env = env_for(live, tok)
    r = CliRunner().invoke(app, ["builds", "demo/hello", "--json"], env=env)
    assert r.exit_code == 0
    assert [b["id"] for b in json.loads(r.stdout)] == [final["id"]]
    for follow in ([], ["--follow"]):
        r = CliRunner().invoke(app, ["logs", "demo/hello", final["id"], "--json", *follow],
                               env=env)
        assert r.exit_code == 0
        entries = [json.loads(line) for line in r.stdout.splitlines()]
        assert {"message": "hello from RUN", "data": entries[3]["data"]} in entries
        assert [e["message"] for e in entries if e.get("type") == "phase"][-1] == "complete"


def test_piped_output_is_neither_wrapped_nor_coloured(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    tags = [f"a-rather-long-tag-name-{i}" for i in range(4)]
    record = live.run(enqueue(live.env.control, NewBuild(  # type: ignore[union-attr]
        namespace="demo", repository="hello", tags=tags, registry="r")))
    env = {**os.environ, **env_for(live, tok), "COLUMNS": "", "FORCE_COLOR": ""}
    for args in (["builds", "demo/hello"], ["context", "list"]):
        result = subprocess.run([str(SLIPWAY), *args], capture_output=True, text=True,
                                env=env, timeout=60)
        assert "\x1b[" not in result.stdout + result.stderr
    result = subprocess.run([str(SLIPWAY), "builds", "demo/hello"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if record.id[:8] in line]
    assert len(row) > 80  # one line, though longer than a terminal's 80 columns
    assert f"{tags[0]} +3" in row and "waiting" in row
    assert row.endswith("a worker is being started for it")  # why it waits, whole


def test_unknown_repository_says_so(live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    r = CliRunner().invoke(app, ["builds", "demo/nothing-here"], env=env_for(live, tok))
    assert r.exit_code == 1 and r.stdout == ""
    assert (f"no builds in repository demo/nothing-here on {live.url}: it is unknown there"
            in r.stderr)


def test_registry_and_scope_are_checked_before_the_upload(
    tmp_path: Path, live: LiveApi
) -> None:
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n", "big.bin": "x" * 100_000})
    env = env_for(live, live.token(DEMO_WRITE))
    r = CliRunner().invoke(app, ["build", str(tmp_path / "ctx"), "-t",
                                 "registry.elsewhere.example/demo/hello"], env=env)
    assert r.exit_code == 1
    assert ("registry 'registry.elsewhere.example' is not a registry "
            f"{live.url} pushes to; allowed: 127.0.0.1:5000") in r.stderr
    assert "Uploading" not in r.stdout + r.stderr
    reader = env_for(live, live.token({"demo": "read"}))
    r = CliRunner().invoke(app, ["build", str(tmp_path / "ctx"), "-t", TARGET], env=reader)
    assert r.exit_code == 1
    assert "may not build in namespace 'demo' (it needs write); nothing was uploaded" in r.stderr
    assert uploads(live) == 0
    played = asyncio.run_coroutine_threadsafe(play(live.env, succeed=True), live.loop)  # type: ignore[arg-type]
    r = CliRunner().invoke(app, ["build", str(tmp_path / "ctx"), "-t", TARGET], env=env)
    played.result(30)
    assert r.exit_code == 0 and uploads(live) == 1  # the count does count


def test_upload_size_is_in_mb(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n"})
    (tmp_path / "ctx" / "blob.bin").write_bytes(os.urandom(2_500_000))
    code, out, err, _ = build_with(live, tok, [str(tmp_path / "ctx"), "-t", TARGET])
    assert code == 0, err
    assert "Packing the context: 2.5 MB" in out
    assert "Uploading the context (2 files, 2.5 MB)" in out


def test_context_from_standard_input(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {"docker/Dockerfile": b"FROM base\n", "app.txt": b"hi"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    code, _, err, record = build_with(
        live, tok, ["-", "-f", "docker/Dockerfile", "-t", TARGET], stdin=buffer.getvalue())
    assert code == 0, err
    assert record.dockerfile_path == "docker/Dockerfile"  # type: ignore[attr-defined]
    # a Dockerfile alone on stdin, as `docker build - < Dockerfile`
    code, _, err, record = build_with(live, tok, ["-", "-t", TARGET], stdin=b"FROM base\n")
    assert code == 0, err
    assert record.dockerfile_path == "Dockerfile"  # type: ignore[attr-defined]
    # an archive without the Dockerfile is refused before anything is sent
    r = CliRunner().invoke(app, ["build", "-", "-t", TARGET], env=env_for(live, tok),
                           input=buffer.getvalue())
    assert r.exit_code == 1
    assert "the archive on standard input has no Dockerfile" in r.stderr


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"})


def test_context_from_a_git_url(tmp_path: Path, live: LiveApi) -> None:
    tok = live.token(DEMO_WRITE)
    work = tmp_path / "work"
    write(work, {"app/Dockerfile": "FROM base\n", "app/msg.txt": "v1", "README": "x"})
    git("init", "-q", "-b", "main", str(work))
    git("add", ".", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    git("tag", "v1", cwd=work)
    (work / "app" / "msg.txt").write_text("v2")
    git("commit", "-qam", "two", cwd=work)
    bare = tmp_path / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    assert live.env is not None and live.loop is not None

    async def play_and_read() -> dict[str, bytes]:
        build, _ = await play(live.env, succeed=True)  # type: ignore[arg-type]
        from slipway.api.uploads import get_upload
        upload = await get_upload(live.env.store, build.resource_key or "")  # type: ignore[union-attr]
        assert upload is not None and upload.path is not None
        with tarfile.open(upload.path) as tar:
            return {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                    for m in tar.getmembers() if m.isfile()}

    played = asyncio.run_coroutine_threadsafe(play_and_read(), live.loop)
    r = CliRunner().invoke(app, ["build", f"file://{bare}#v1:app", "-t", TARGET],
                           env=env_for(live, tok))
    files = played.result(30)
    assert r.exit_code == 0, r.stderr
    assert f"Cloning file://{bare} at v1" in r.stdout
    assert files == {"Dockerfile": b"FROM base\n", "msg.txt": b"v1"}  # no .git, no README

    r = CliRunner().invoke(app, ["build", f"file://{tmp_path}/missing.git", "-t", TARGET],
                           env=env_for(live, tok))
    assert r.exit_code == 1 and "git clone of file://" in r.stderr


def test_build_says_why_it_waits(tmp_path: Path, live: LiveApi) -> None:
    assert live.env is not None
    tok = live.token(DEMO_WRITE)
    running = live.run(enqueue(live.env.control, NewBuild(
        namespace="demo", repository="hello", tags=["old"], registry="127.0.0.1:5000")))
    live.run(live.env.store.queue.claim("m1", limit=1, lease_seconds=600))
    from slipway.domain.phases import Phase
    live.run(live.env.advance(running.id, Phase.BUILDING))
    write(tmp_path / "ctx", {"Dockerfile": "FROM base\n"})
    code, out, err, _ = build_with(live, tok, [str(tmp_path / "ctx"), "-t", TARGET])
    assert code == 0, err
    assert (f"waiting: build {running.id} of demo/hello is running (one build per "
            "repository at a time)") in out
