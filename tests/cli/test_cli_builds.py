"""The build commands: context packing (.dockerignore), -t parsing, and `slipway build`
against a live API whose builds the test plays through the store (as a manager would)."""

from __future__ import annotations

import asyncio
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from support.api_app import ApiEnv, LiveApi
from support.enqueue import enqueue
from typer.testing import CliRunner

from slipway.api.uploads import get_upload
from slipway.cli.dockerignore import excluded, pack, parse
from slipway.cli.main import app
from slipway.domain.phases import Phase
from slipway.server import bootstrap_admin
from slipway.store.records import BuildRecord, NewBuild

DIGEST = "sha256:" + "b" * 64


def tar_names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {m.name for m in tar.getmembers() if not m.isdir()}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*.log"], "a.log", True),
        (["*.log"], "sub/a.log", False),  # '*' stays within one directory, like docker
        (["**/*.log"], "sub/deep/a.log", True),
        (["**/*.log"], "a.log", True),
        (["build"], "build/out/x.o", True),  # a matched directory excludes its contents
        (["build/", "!build/keep.txt"], "build/keep.txt", False),
        (["docs/**"], "docs/x/y.md", True),
        (["/secret.txt"], "secret.txt", True),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["[ab].txt"], "b.txt", True),
        (["*", "!src"], "src/main.py", False),
        (["*", "!src", "src/*.pyc"], "src/x.pyc", True),
        (["# comment", ""], "# comment", False),
    ],
)
def test_dockerignore_matching(patterns: list[str], path: str, expected: bool) -> None:
    assert excluded(parse(patterns), path) is expected


def test_pack_honours_dockerignore_and_keeps_the_dockerfile(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {
        "Dockerfile": "FROM x\n",
        ".dockerignore": "Dockerfile\n.dockerignore\n*.log\n**/*.tmp\nbuild\n!build/keep.txt\n"
                         "node_modules/\n",
        "app.py": "print()\n",
        "debug.log": "x",
        "src/util.py": "",
        "src/cache/a.tmp": "",
        "build/out.o": "",
        "build/keep.txt": "",
        "node_modules/pkg/index.js": "",
    })
    out = tmp_path / "ctx.tar.gz"
    pack(ctx, out)
    assert tar_names(out) == {
        "Dockerfile", ".dockerignore", "app.py", "src/util.py", "build/keep.txt"}
    with tarfile.open(out) as tar:
        assert all(m.uid == 0 and m.uname == "" for m in tar.getmembers())


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([], "at least one -t"),
        (["hello:latest"], "HOST/NAMESPACE/REPO"),
        (["demo/hello"], "HOST/NAMESPACE/REPO"),
        (["notahost/demo/hello"], "not a registry host"),
        (["127.0.0.1:5000/Demo/hello"], "lowercase"),
        (["127.0.0.1:5000/demo/hello:-bad"], "not a valid tag"),
        (["127.0.0.1:5000/demo/hello@sha256:abc"], "digest"),
        (["127.0.0.1:5000/demo/hello:v1", "127.0.0.1:5000/demo/other:v1"], "same repository"),
        (["127.0.0.1:5000/demo/hello:v1", "10.0.0.1:5000/demo/hello:v1"], "same repository"),
    ],
)
def test_bad_targets_are_refused_before_anything_is_sent(
    tmp_path: Path, tags: list[str], message: str
) -> None:
    write(tmp_path, {"Dockerfile": "FROM x\n"})
    args = ["build", str(tmp_path)]
    for t in tags:
        args += ["-t", t]
    # no server listens at this URL: the command must fail on the arguments first
    result = CliRunner().invoke(app, args, env={"SLIPWAY_URL": "http://127.0.0.1:9",
                                                "SLIPWAY_TOKEN": "x"})
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_unreachable_server_and_missing_token_are_explained(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SLIPWAY_URL": "http://127.0.0.1:9", "XDG_CONFIG_HOME": str(tmp_path / "none")}
    r = runner.invoke(app, ["builds", "demo/hello"], env={**env, "SLIPWAY_TOKEN": "x"})
    assert r.exit_code == 1 and "cannot reach slipway at http://127.0.0.1:9" in r.output
    r = runner.invoke(app, ["builds", "demo/hello"], env={**env, "SLIPWAY_TOKEN": ""})
    assert r.exit_code == 1 and "no API token" in r.output


def cli_env(live: LiveApi, token: str) -> dict[str, str]:
    return {"SLIPWAY_URL": live.url, "SLIPWAY_TOKEN": token, "COLUMNS": "200"}


async def play(env: ApiEnv, *, succeed: bool) -> tuple[BuildRecord, set[str]]:
    """Act as the manager and worker: take the waiting build through its phases."""
    for _ in range(600):  # a guard against hanging, not a timing assertion
        if waiting := await env.store.builds.list_in_phases([Phase.WAITING]):
            break
        await asyncio.sleep(0.05)
    build = waiting[0]
    upload = await get_upload(env.store, build.resource_key or "")
    assert upload is not None and upload.path is not None
    names = await asyncio.to_thread(tar_names, upload.path)
    await env.advance(build.id, Phase.BUILD_SCHEDULED)
    await env.advance(build.id, Phase.BUILDING, "STEP 1/3: FROM base", "hello from RUN")
    if succeed:
        await env.advance(build.id, Phase.PUSHING, "pushing")
        await env.advance(build.id, Phase.COMPLETE, image_digest=DIGEST)
    else:
        await env.advance(build.id, Phase.ERROR, error="RUN false: exit status 1")
    return build, names


def test_build_uploads_follows_and_reports_the_digest(tmp_path: Path, live: LiveApi) -> None:
    assert live.env is not None
    token = live.token({"demo": "write"})
    ctx = tmp_path / "hello"
    write(ctx, {"Dockerfile": "FROM base\nARG GREETING\n", "msg.txt": "hi",
                ".dockerignore": "*.log\n", "noise.log": "x"})
    played = asyncio.run_coroutine_threadsafe(play(live.env, succeed=True), live.loop)  # type: ignore[arg-type]
    result = CliRunner().invoke(
        app,
        ["build", str(ctx), "-t", "127.0.0.1:5000/demo/hello:latest",
         "-t", "127.0.0.1:5000/demo/hello:v1", "--build-arg", "GREETING=hey", "--target", "final"],
        env=cli_env(live, token),
    )
    build, names = played.result(30)
    assert result.exit_code == 0, result.output
    assert names == {"Dockerfile", "msg.txt", ".dockerignore"}
    assert build.tags == ["latest", "v1"] and build.registry == "127.0.0.1:5000"
    assert build.build_args == {"GREETING": "hey"} and build.target == "final"
    assert (build.context, build.dockerfile_path) == ("", "Dockerfile")
    out = result.output
    assert "hello from RUN" in out and "building" in out
    assert "pushed 127.0.0.1:5000/demo/hello:v1" in out and DIGEST in out
    # the other commands see it
    r = CliRunner().invoke(app, ["builds", "demo/hello"], env=cli_env(live, token))
    assert r.exit_code == 0 and build.id[:8] in r.output and "complete" in r.output
    r = CliRunner().invoke(app, ["logs", "demo/hello", build.id], env=cli_env(live, token))
    assert r.exit_code == 0 and "hello from RUN" in r.output
    r = CliRunner().invoke(app, ["logs", "demo/hello", build.id, "--follow"],
                           env=cli_env(live, token))
    assert r.exit_code == 0 and "complete" in r.output


def test_failed_build_exits_1_with_the_error(tmp_path: Path, live: LiveApi) -> None:
    assert live.env is not None
    token = live.token({"demo": "admin"})
    write(tmp_path / "ctx", {"Containerfile": "FROM base\nRUN false\n"})
    played = asyncio.run_coroutine_threadsafe(play(live.env, succeed=False), live.loop)  # type: ignore[arg-type]
    result = CliRunner().invoke(
        app, ["build", str(tmp_path / "ctx"), "-t", "127.0.0.1:5000/demo/hello"],
        env=cli_env(live, token),
    )
    build, _ = played.result(30)
    assert result.exit_code == 1
    assert "RUN false: exit status 1" in result.output
    assert build.dockerfile_path == "Containerfile"
    # cancelling a finished build is refused with the server's reason
    r = CliRunner().invoke(app, ["cancel", "demo/hello", build.id], env=cli_env(live, token))
    assert r.exit_code == 1 and "running or has finished" in r.output


def test_cancel_with_the_credentials_file_serve_writes(
    tmp_path: Path, live: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert live.env is not None
    xdg = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(xdg), "SLIPWAY_URL": "", "SLIPWAY_TOKEN": ""}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    token = live.run(bootstrap_admin(live.env.store, live.env.config))
    saved: dict[str, Any] = json.loads((xdg / "slipway" / "cli.json").read_text())
    name = live.url.removeprefix("http://")
    assert saved == {"current": name, "contexts": {name: {"server": live.url, "token": token}}}
    record = live.run(enqueue(live.env.control, NewBuild(
        namespace="demo", repository="hello", tags=["latest"], registry="r")))
    r = CliRunner().invoke(app, ["cancel", "demo/hello", record.id], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["builds", "demo/hello"], env=env)
    assert "cancelled" in r.output


