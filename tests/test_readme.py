"""The README's quick path works as written: its commands are read out of README.md (the
code block after the `quick-path` marker, so the README cannot drift from the code) and run
as a user runs them, from the repository's root with `slipway` on PATH, in a fresh
XDG_DATA_HOME/XDG_CONFIG_HOME. `slipway serve` (no config: the embedded default) runs in
the background; BUILD_ID is the id `slipway build` printed. Then the build is complete
and its image is in the registry `serve --registry` ran, which stops with the server."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- quick-path"
# the embedded default's addresses, and --registry's: the README's commands use them
PORTS = {8700: "the API", 50051: "gRPC", 5000: "the local registry"}
START_LIMIT_S = 120.0  # guards against a hang; not a timing assertion
COMMAND_LIMIT_S = 600.0

pytestmark = pytest.mark.podman


def quick_path() -> list[str]:
    """The `$ ` commands of the quick path's code block, comments removed."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```console\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block is not None, "no code block after the quick-path marker"
    commands = []
    for line in block.group(1).splitlines():
        assert line.startswith("$ "), f"not a command: {line!r}"
        command = line[2:].split("  #", 1)[0].strip()
        commands.append(command)
    return commands


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLIPWAY_") and k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


@contextlib.contextmanager
def _background(argv: list[str], env: dict[str, str], log: Path) -> Iterator[
        subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_for(text: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"serve exited: {log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"{text!r} never printed: {log.read_text()}"
        time.sleep(0.1)


def test_the_quick_path_commands_are_what_the_test_runs() -> None:
    commands = quick_path()
    assert [c.split()[:2] for c in commands] == [
        ["scripts/make-base-image.sh"], ["slipway", "serve"], ["slipway", "build"],
        ["slipway", "builds"], ["slipway", "logs"], ["skopeo", "inspect"]]
    assert "--config" not in commands[1]  # the embedded default


def test_the_readme_quick_path_runs_as_written(tmp_path: Path, base_image: str) -> None:
    busy = [f"{port} ({what})" for port, what in PORTS.items() if _in_use(port)]
    if busy:
        pytest.skip(f"the README's fixed ports are in use on this machine: {', '.join(busy)}")
    env = _user_env(tmp_path)
    outputs: dict[str, str] = {}
    build_id = ""
    serve_log = tmp_path / "serve.log"
    with contextlib.ExitStack() as stack:
        serve: subprocess.Popen[bytes] | None = None
        for command in quick_path():
            argv = shlex.split(command.replace("BUILD_ID", build_id))
            if argv[:2] == ["slipway", "serve"]:
                serve = stack.enter_context(_background(argv, env, serve_log))
                _wait_for("slipway is running", serve, serve_log)
                continue
            result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=COMMAND_LIMIT_S)
            output = result.stdout + result.stderr
            assert result.returncode == 0, f"{command}: {output}\nserve: {serve_log.read_text()}"
            outputs[argv[1] if argv[0] == "slipway" else argv[0]] = output
            if argv[:2] == ["slipway", "build"]:
                found = re.search(r"Build (\S+) queued", output)
                assert found, output
                build_id = found.group(1)
        assert serve is not None
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=START_LIMIT_S) == 0, serve_log.read_text()

    said = serve_log.read_text()
    assert "local registry: 127.0.0.1:5000" in said
    assert "error" not in said.lower(), said
    assert re.search(rf"{build_id[:8]}\s.*complete", outputs["builds"]), outputs["builds"]
    assert "Pushed 127.0.0.1:5000/team/hello:latest" in outputs["logs"], outputs["logs"]
    assert '"Digest": "sha256:' in outputs["skopeo"]
    assert not _in_use(5000), "the local registry outlived serve"
    # its images were kept in DATA_DIR, under the XDG_DATA_HOME the commands ran with
    assert (tmp_path / "data" / "slipway" / "registry" / "storage" / "docker").is_dir()
