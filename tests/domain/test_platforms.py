"""Build platforms (docs/multi-arch.md): the platform rule shared by the API, the CLI,
the executor config and the worker; which platforms a build gets; the emulation check a
worker makes before building; the runtime's arguments for a manifest list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from support.api_app import ApiEnv, api_env, client

from slipway.cli.builds_cmd import parse_platforms
from slipway.cli.client import CliError
from slipway.domain.platforms import InvalidPlatform, normalize_platform, normalize_platforms
from slipway.executors.local.config import LocalExecutorConfig
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.build import build_platforms
from slipway.worker.emulation import check_emulation, missing_emulation
from slipway.worker.environment import WorkerEnvironmentError, load_environment
from slipway.worker.errors import BuildError
from slipway.worker.runtimes.base import BuildSpec, build_options

BASE = {"TOKEN": "t", "SERVER": "127.0.0.1:1"}
BUILDS = "/api/v1/repository/acme/web/build/"


def test_platform_spellings() -> None:
    assert normalize_platform(" Linux/ARM64 ") == "linux/arm64"
    assert normalize_platform("linux/arm/v7") == "linux/arm/v7"
    assert normalize_platforms(["linux/amd64", "linux/arm64"]) == ["linux/amd64", "linux/arm64"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("arm64", "is not a platform: use linux/ARCH"),
        ("linux/", "is not a platform"),
        ("windows/amd64", "only linux images are built"),
        ("linux/arm65", "unknown architecture 'arm65'"),
        ("linux/amd64/v9", "amd64 has no variant 'v9' (variants: none)"),
        ("linux/arm/v9", "arm has no variant 'v9' (variants: v5, v6, v7)"),
    ],
)
def test_bad_platforms_say_what_is_wrong(value: str, words: str) -> None:
    with pytest.raises(InvalidPlatform, match=words.replace("(", r"\(").replace(")", r"\)")):
        normalize_platform(value)


def test_twice_or_too_many() -> None:
    with pytest.raises(InvalidPlatform, match="'linux/amd64' is given more than once"):
        normalize_platforms(["linux/amd64", "LINUX/amd64"])
    with pytest.raises(InvalidPlatform, match="at most 8"):
        normalize_platforms([f"linux/{a}" for a in (
            "amd64", "386", "arm64", "arm", "ppc64le", "s390x", "riscv64", "mips", "mipsle")])


def test_cli_takes_commas_and_repeats() -> None:
    assert parse_platforms(["linux/amd64,linux/arm64", "linux/s390x"]) == [
        "linux/amd64", "linux/arm64", "linux/s390x"]
    assert parse_platforms([]) == []
    with pytest.raises(CliError, match="--platform: 'linux/x': unknown architecture"):
        parse_platforms(["linux/x"])


def test_executor_default_and_worker_environment() -> None:
    from slipway.config.loader import parse_config
    from slipway.manager.worker_env import worker_environment

    executor = LocalExecutorConfig.model_validate(
        {"EXECUTOR": "local", "PLATFORMS": ["linux/amd64", "Linux/ARM64"]})
    assert executor.PLATFORMS == ["linux/amd64", "linux/arm64"]
    env = worker_environment(parse_config({}).config, executor, token="t", build_id="b")
    assert env["PLATFORMS"] == "linux/amd64,linux/arm64"
    assert load_environment({**BASE, "PLATFORMS": env["PLATFORMS"]}).platforms == (
        "linux/amd64", "linux/arm64")
    plain = LocalExecutorConfig.model_validate({"EXECUTOR": "local"})
    assert "PLATFORMS" not in worker_environment(
        parse_config({}).config, plain, token="t", build_id="b")
    with pytest.raises(ValidationError, match="unknown architecture 'sparc'"):
        LocalExecutorConfig.model_validate({"EXECUTOR": "local", "PLATFORMS": ["linux/sparc"]})
    with pytest.raises(WorkerEnvironmentError, match="PLATFORMS: 'x' is not a platform"):
        load_environment({**BASE, "PLATFORMS": "x"})


def test_the_build_names_its_platforms_else_the_executor_does() -> None:
    env = load_environment({**BASE, "PLATFORMS": "linux/amd64,linux/arm64"})
    assert build_platforms(pb.BuildPack(), env) == ("linux/amd64", "linux/arm64")
    assert build_platforms(pb.BuildPack(platforms=["linux/s390x"]), env) == ("linux/s390x",)
    assert build_platforms(pb.BuildPack(), load_environment(BASE)) == ()
    with pytest.raises(BuildError, match="platforms: 'linux/x'"):
        build_platforms(pb.BuildPack(platforms=["linux/x"]), env)
    docker = load_environment({**BASE, "CONTAINER_RUNTIME": "docker"})
    assert build_platforms(pb.BuildPack(platforms=["linux/arm64"]), docker) == ("linux/arm64",)
    with pytest.raises(BuildError, match="CONTAINER_RUNTIME=docker builds one platform"):
        build_platforms(pb.BuildPack(platforms=["linux/amd64", "linux/arm64"]), docker)


def _binfmt(tmp_path: Path, status: str = "enabled", **entries: str) -> Path:
    """A directory laid out as /proc/sys/fs/binfmt_misc is."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "status").write_text(f"{status}\n")
    for name, state in entries.items():
        (tmp_path / f"qemu-{name}").write_text(
            f"{state}\ninterpreter /usr/libexec/qemu-binfmt/{name}-binfmt-P\nflags: PF\n")
    return tmp_path


def test_emulation_needs_an_enabled_entry(tmp_path: Path) -> None:
    binfmt = _binfmt(tmp_path, aarch64="enabled", s390x="disabled")
    on_x86 = {"binfmt_dir": binfmt, "machine": "x86_64"}
    assert missing_emulation(["linux/amd64", "linux/386", "linux/arm64"], **on_x86) == []
    assert missing_emulation(["linux/s390x", "linux/riscv64"], **on_x86) == [
        "linux/s390x", "linux/riscv64"]
    with pytest.raises(BuildError) as caught:
        check_emulation(["linux/amd64", "linux/riscv64"], **on_x86)
    assert str(caught.value).startswith(
        "platform linux/riscv64 needs QEMU user emulation: install Debian's qemu-user-static "
        "(binfmt-support) on the worker host")
    # on an arm64 host amd64 is the emulated one
    assert missing_emulation(["linux/amd64", "linux/arm64"], binfmt_dir=binfmt,
                             machine="aarch64") == ["linux/amd64"]


def test_emulation_off_or_binfmt_misc_not_mounted(tmp_path: Path) -> None:
    off = _binfmt(tmp_path / "off", status="disabled", aarch64="enabled")
    assert missing_emulation(["linux/arm64"], binfmt_dir=off, machine="x86_64") == [
        "linux/arm64"]
    assert missing_emulation(["linux/arm64"], binfmt_dir=tmp_path / "none",
                             machine="x86_64") == ["linux/arm64"]


def test_a_manifest_list_build_names_the_list_not_the_tags(tmp_path: Path) -> None:
    spec = BuildSpec(context_dir=tmp_path, dockerfile=tmp_path / "Dockerfile",
                     tags=["reg/a/b:1", "reg/a/b:2"], platforms=("linux/amd64", "linux/arm64"),
                     manifest="localhost/slipway-manifest-x")
    argv = build_options(spec)
    assert argv[argv.index("--platform") + 1] == "linux/amd64,linux/arm64"
    assert argv[argv.index("--manifest") + 1] == "localhost/slipway-manifest-x"
    assert "-t" not in argv
    single = BuildSpec(context_dir=tmp_path, dockerfile=tmp_path / "Dockerfile",
                       tags=["reg/a/b:1"], platforms=("linux/arm64",))
    argv = build_options(single)
    assert "--manifest" not in argv and argv[-2:] == ["-t", "reg/a/b:1"]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def test_api_keeps_the_platforms_and_refuses_bad_ones(admin: httpx.AsyncClient) -> None:
    c = admin
    body = {"archive_url": "https://example.com/c.tgz"}
    r = await c.post(BUILDS, json={**body, "platforms": ["linux/amd64", "Linux/arm64"]})
    assert r.status_code == 201, r.text
    assert r.json()["options"]["platforms"] == ["linux/amd64", "linux/arm64"]
    r = await c.post(BUILDS, json={**body, "platforms": ["linux/amd64", "linux/arm65"]})
    assert r.status_code == 400
    message = r.json()["error_message"]
    assert message.startswith("platforms") and "unknown architecture 'arm65'" in message
    r = await c.post(BUILDS, json={**body, "platforms": []})
    assert r.status_code == 400 and "give at least one platform" in r.json()["error_message"]
    plain = await c.post(BUILDS, json=body)
    assert "platforms" not in plain.json()["options"]
