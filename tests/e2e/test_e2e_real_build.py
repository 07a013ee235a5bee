"""Real builds end to end: API -> manager -> local executor -> `slipway worker` -> podman or
buildah -> a real docker-registry; skopeo checks what was pushed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.registry import Registry
from support.server import running_server

pytestmark = pytest.mark.podman

DOCKERFILE = """\
FROM {base} AS builder
ARG GREETING=hello
RUN echo "$GREETING from slipway" > /greeting.txt
RUN wc -c /greeting.txt

FROM {base}
COPY --from=builder /greeting.txt /greeting.txt
COPY app.txt /app.txt
RUN cat /greeting.txt /app.txt
"""


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def skopeo_digest(reference: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return str(json.loads(out)["Digest"])


def _worker_processes() -> list[str]:
    """Every worker process this test process started (the local executor's standby,
    waiting for a build, too): not those of the other pytest process of `make test`, or
    of other checkouts on the machine."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True,
                         text=True).stdout
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for line in out.splitlines():
        pid, ppid, command = [*line.split(None, 2), ""][:3]
        parents[int(pid)], commands[int(pid)] = int(ppid), command

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return [command for pid, command in commands.items()
            if command.startswith(f"{sys.executable} -m slipway.worker") and ours(pid)]


def _build_workers() -> list[str]:
    return [line for line in _worker_processes() if "--standby" not in line]


def _local_image_exists(reference: str) -> bool:
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    storage = ["--storage-driver", driver] if driver else []
    return subprocess.run(["podman", *storage, "image", "exists", reference]).returncode == 0


async def _image_gone(reference: str, limit: float = 60.0) -> None:
    """The worker's clean-up removed the image (a safety limit, not a timing test)."""
    deadline = time.monotonic() + limit
    while _local_image_exists(reference):
        assert time.monotonic() < deadline, f"{reference} is still on the host"
        await asyncio.sleep(0.1)


async def _workers_gone(limit: float = 60.0) -> None:
    """Workers report the end first and clean up after: wait for them to leave."""
    deadline = time.monotonic() + limit
    while _build_workers():
        if time.monotonic() > deadline:
            raise AssertionError(f"workers still running after {limit} s")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("runtime", ["podman", "buildah"])
async def test_real_build_with_two_tags_multistage_and_build_arg(
    tmp_path: Path, registry: Registry, base_image: str, runtime: str
) -> None:
    async with running_server(
        tmp_path,
        SERVER_HOSTNAME=registry.host,
        INSECURE_REGISTRIES=[registry.host],
        BUILD_MANAGER=["ephemeral", {"EXECUTORS": [
            {"EXECUTOR": "local", "CONTAINER_RUNTIME": runtime}]}],
    ) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": DOCKERFILE.format(base=base_image),
            "app.txt": "app content\n",
        })
        build = await slipway.start_build(
            "demo", f"hello-{runtime}", file_id=file_id, docker_tags=["latest", "v1"],
            build_args={"GREETING": "bonjour"})
        final = await slipway.wait_final("demo", f"hello-{runtime}", build["id"])
        logs = await slipway.logs("demo", f"hello-{runtime}", build["id"])
        assert final["phase"] == "complete", (final, [e["message"] for e in logs][-20:])
        digest = final["image_digest"]
        assert digest.startswith("sha256:")
        for tag in ("latest", "v1"):
            assert skopeo_digest(f"{registry.host}/demo/hello-{runtime}:{tag}") == digest
        phases = [e["message"] for e in logs if e.get("type") == "phase"]
        assert phases == ["waiting", "build-scheduled", "unpacking", "pulling", "building",
                          "pushing", "complete"]
        commands = [e["message"] for e in logs if e.get("type") == "command"]
        assert any("RUN echo" in c for c in commands), commands
        assert len(commands) >= 6  # every STEP line of both stages
        assert any("bonjour from slipway" in e["message"] for e in logs)
        # the worker cleans up after reporting the end, and the manager lets it finish
        await _workers_gone()
        # (the standby worker that ran the build keeps `--standby` in its command line,
        # so _workers_gone cannot tell its clean-up from its wait: wait for the images)
        for tag in ("latest", "v1"):
            await _image_gone(f"{registry.host}/demo/hello-{runtime}:{tag}")
    assert _worker_processes() == []


async def test_failing_run_ends_error_with_the_runtime_message(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    async with running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
    ) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": f"FROM {base_image}\nRUN echo about to fail && exit 7\n",
        })
        build = await slipway.start_build("demo", "broken", file_id=file_id)
        final = await slipway.wait_final("demo", "broken", build["id"])
        assert final["phase"] == "error"
        assert final["error"]
        assert final["retries_remaining"] == 2  # one attempt, not retried
        assert len(final["attempts"]) == 1
        logs = await slipway.logs("demo", "broken", build["id"])
        errors = [e["message"] for e in logs if e.get("type") == "error"]
        assert any("exit" in m.lower() and "7" in m for m in errors), errors
        assert errors == [final["error"]]  # once, in the log as in the build's error
        assert final["error"] == ("Dockerfile line 2: RUN echo about to fail && exit 7: "
                                  "exit status 7")
    assert _worker_processes() == []


async def test_push_refused_by_the_registry_ends_error(
    tmp_path: Path, auth_registry: Registry, base_image: str
) -> None:
    async with running_server(
        tmp_path,
        SERVER_HOSTNAME=auth_registry.host,
        INSECURE_REGISTRIES=[auth_registry.host],
        REGISTRY_CREDENTIALS={auth_registry.host: {"username": "builder",
                                                   "password": "wrong-password"}},
    ) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": f"FROM {base_image}\nRUN echo built\n"})
        build = await slipway.start_build("demo", "refused", file_id=file_id)
        final = await slipway.wait_final("demo", "refused", build["id"])
        assert final["phase"] == "error"
        assert "wrong-password" not in json.dumps(final)
        logs = await slipway.logs("demo", "refused", build["id"])
        text = " ".join(e["message"] for e in logs if e.get("type") == "error").lower()
        assert "unauthorized" in text or "authentication required" in text, text
        assert "wrong-password" not in json.dumps(logs)
    assert _worker_processes() == []
    assert os.environ.get("SLIPWAY_TOKEN") is None


async def test_a_dockerfile_syntax_error_is_one_clean_message_shown_once(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    from typer.testing import CliRunner

    from slipway.cli.main import app

    context = tmp_path / "bad"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo ok\nRUNN echo bad\n")
    expected = "Dockerfile line 3: unknown instruction: RUNN"
    async with running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
    ) as slipway:
        env = {"SLIPWAY_URL": slipway.base_url, "SLIPWAY_TOKEN": slipway.server.admin_token or "",
               "COLUMNS": "200"}
        runner = CliRunner()
        built = await asyncio.to_thread(
            runner.invoke, app, ["build", str(context), "-t", f"{registry.host}/demo/bad:1"],
            env=env)
        listed = await asyncio.to_thread(runner.invoke, app, ["builds", "demo/bad"], env=env)
        [build] = (await slipway.api.get("/api/v1/repository/demo/bad/build/")).json()["builds"]
        logs = await slipway.logs("demo", "bad", build["id"])
    assert build["phase"] == "error"
    assert build["error"] == expected
    assert [e["message"] for e in logs if e.get("type") == "error"] == [expected]
    shown = [e["message"] for e in logs]
    assert not any("imagebuilder" in m or "Error:" in m for m in shown), "\n".join(shown)
    # `slipway build`: the error once, on its last line (not in the log it printed too)
    assert built.exit_code == 1
    assert built.output.count("unknown instruction: RUNN") == 1, built.output
    assert "imagebuilder" not in built.output
    assert built.output.rstrip().endswith(f"build {build['id']} error: {expected}")
    # `slipway builds`: the same one message
    assert listed.exit_code == 0 and expected in listed.output
    assert "imagebuilder" not in listed.output
