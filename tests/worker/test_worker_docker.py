"""The docker runtime issues the same steps through the docker CLI: checked command by
command with a fake `docker` on PATH that records its argv (no docker daemon here)."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import pytest
from support.fake_manager import FakeManager, serve_manager
from support.fileserver import serve_files

from slipway.protocol import buildman_pb2 as pb
from slipway.worker.agent import EXIT_OK, run_worker
from slipway.worker.environment import WorkerEnvironment

DIGEST = "sha256:" + "b" * 64
FAKE_DOCKER = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
record = {{"argv": sys.argv, "docker_host": os.environ.get("DOCKER_HOST", "")}}
if args[:1] == ["--config"]:
    with open(os.path.join(args[1], "config.json")) as f:
        record["config"] = json.load(f)
    record["config_mode"] = oct(os.stat(os.path.join(args[1], "config.json")).st_mode & 0o777)
    args = args[2:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as f:
    f.write(json.dumps(record) + "\\n")
if args[:2] == ["image", "inspect"]:
    print("Error: No such image: " + args[2], file=sys.stderr)
    sys.exit(1)
if args[:1] == ["pull"]:
    print(args[1].split(":")[-1] + ": Pulling from org/base")
elif args[:1] == ["build"]:
    open(args[args.index("--iidfile") + 1], "w").write("sha256:" + "a" * 64)
    print("Step 1/2 : FROM quay.io/org/base:3.1")
    print("Step 2/2 : RUN true")
elif args[:1] == ["push"]:
    if "refused" in args[1]:
        print("unauthorized: authentication required", file=sys.stderr)
        sys.exit(1)
    print("The push refers to repository [" + args[1].rsplit(":", 1)[0] + "]")
    print(args[1].rsplit(":", 1)[1] + ": digest: {DIGEST} size: 528")
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER)
    (bindir / "docker").chmod(0o755)
    log = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def calls(log: Path) -> list[dict[str, object]]:
    out = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        record["argv"] = [re.sub(r"/slipway-build-[^/]+", "/W", a) for a in record["argv"]]
        record["argv"][0] = "docker"
        out.append(record)
    return out


async def run(
    tmp_path: Path, repository: str = "ns/app", **options: object
) -> tuple[int, FakeManager]:
    dockerfile = b"FROM quay.io/org/base:3.1 AS final\nRUN true\n"
    with serve_files({"/Dockerfile": (dockerfile, "text/plain")}) as files:
        pack = pb.BuildPack(
            job_jwt="job-token",
            package_url=f"{files}/Dockerfile",
            repository=repository,
            registry="registry.example.com:5000",
            tag_names=["v1", "latest"],
            base_image=pb.BuildPack.BaseImage(username="puller", password="pull-pass"),
            push_username="pusher",
            push_password="push-pass",
            build_args=[pb.BuildPack.BuildArg(name="A", value="1")],
            target="final",
            **options,  # type: ignore[arg-type]
        )
        manager = FakeManager(pack, "tok")
        async with serve_manager(manager) as server:
            env = WorkerEnvironment(
                token="tok",
                server=server,
                container_runtime="docker",
                insecure=True,
                docker_host="unix:///run/fake-docker.sock",
                work_dir=str(tmp_path / "work"),
                heartbeat_interval=0.2,
                retry_window=5,
            )
            (tmp_path / "work").mkdir()
            code = await run_worker(env)
    return code, manager


async def test_docker_runtime_commands(tmp_path: Path, fake_docker: Path) -> None:
    code, manager = await run(tmp_path)
    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "PULLING", "BUILDING", "PUSHING", "COMPLETE"]
    assert manager.rec.phases[-1].image_digest == DIGEST
    assert manager.rec.phases[1].pull_metadata.pull_username == "puller"

    recorded = calls(fake_docker)
    reg = "registry.example.com:5000/ns/app"
    w = str(tmp_path / "work" / "W")
    assert [c["argv"] for c in recorded] == [
        ["docker", "image", "inspect", "quay.io/org/base:3.1"],
        ["docker", "--config", f"{w}/docker/pull", "pull", "quay.io/org/base:3.1"],
        [
            "docker",
            "--config",
            f"{w}/docker/build",
            "build",
            "--iidfile",
            f"{w}/image.iid",
            "-f",
            f"{w}/package/Dockerfile",
            "--build-arg",
            "A=1",
            "--target",
            "final",
            "-t",
            f"{reg}:v1",
            "-t",
            f"{reg}:latest",
            f"{w}/package",
        ],
        ["docker", "--config", f"{w}/docker/push", "push", f"{reg}:v1"],
        ["docker", "--config", f"{w}/docker/push", "push", f"{reg}:latest"],
        # the build's images in one call, then the base it pulled (once they are gone)
        ["docker", "rmi", f"{reg}:v1", f"{reg}:latest"],
        ["docker", "rmi", "quay.io/org/base:3.1"],
    ]
    assert all(c["docker_host"] == "unix:///run/fake-docker.sock" for c in recorded)
    # credentials only in private config files, each registry getting its own
    pull_cfg, build_cfg, push_cfg = recorded[1], recorded[2], recorded[3]
    assert pull_cfg["config"] == {"auths": {"quay.io": {"auth": b64("puller:pull-pass")}}}
    assert build_cfg["config"] == pull_cfg["config"]
    assert push_cfg["config"] == {
        "auths": {"registry.example.com:5000": {"auth": b64("pusher:push-pass")}}
    }
    assert {c.get("config_mode") for c in recorded if "config" in c} == {"0o600"}
    assert not any("pass" in a for c in recorded for a in c["argv"])  # type: ignore[union-attr]
    assert "Step 2/2 : RUN true" in manager.rec.stream_lines()
    assert not list((tmp_path / "work").iterdir()), "the build's temp dir was not removed"


async def test_docker_push_refused_is_an_error(tmp_path: Path, fake_docker: Path) -> None:
    code, manager = await run(tmp_path, repository="ns/refused")
    assert code == EXIT_OK
    assert manager.rec.phase_names()[-2:] == ["PUSHING", "ERROR"]
    assert "unauthorized: authentication required" in manager.rec.phases[-1].error_message


async def test_no_cache_pull_and_labels_reach_docker_build(
    tmp_path: Path, fake_docker: Path
) -> None:
    labels = [pb.BuildPack.BuildArg(name="org.opencontainers.image.source", value="https://x/y"),
              pb.BuildPack.BuildArg(name="team", value="a b")]
    code, manager = await run(tmp_path, no_cache=True, pull=True, labels=labels)
    assert code == EXIT_OK, manager.rec.phases
    [build] = [c["argv"] for c in calls(fake_docker) if "build" in c["argv"]]
    assert "--no-cache" in build and "--pull" in build
    i = build.index("--label")
    assert build[i:i + 4] == ["--label", "org.opencontainers.image.source=https://x/y",
                              "--label", "team=a b"]
