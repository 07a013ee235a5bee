"""`slipway serve --registry`: what it says when the local registry cannot start (one
line, exit 1, nothing started), and what a config file's lists gain. The registry running
and stopping with serve, a build pushed to it, is tests/test_readme.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from support.registry import free_port

from slipway.cli.serve_cmd import _with_local_registry
from slipway.config.loader import default_config, parse_config


def _serve(tmp_path: Path, *args: str, path: str | None = None) -> tuple[int, list[str]]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if path is not None:
        env["PATH"] = path
    result = subprocess.run([sys.executable, "-m", "slipway.cli.main", "serve", *args],
                            env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, (result.stdout + result.stderr).strip().splitlines()


def test_without_docker_registry_it_names_the_package(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    assert _serve(tmp_path, "--registry", path=str(empty)) == (1, [
        "error: slipway could not start: docker-registry is not installed: install Debian's "
        "docker-registry package (apt-get install docker-registry), or start serve without "
        "--registry and push to a registry of yours"])


def test_an_address_off_loopback_is_refused(tmp_path: Path) -> None:
    assert _serve(tmp_path, "--registry", "--registry-address", "0.0.0.0:5000") == (1, [
        "error: slipway could not start: --registry-address: '0.0.0.0:5000' is not a "
        "loopback host:port; the local registry has no authentication, so it listens on "
        "loopback only (e.g. 127.0.0.1:5000)"])


def test_an_address_in_use_names_the_option(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        code, lines = _serve(tmp_path, "--registry", "--registry-address", f"127.0.0.1:{port}")
    assert (code, lines) == (1, [
        f"error: slipway could not start: 127.0.0.1:{port} is already in use "
        "(--registry-address): stop what listens there, or set --registry-address to a "
        "free address"])
    assert not (tmp_path / "data" / "slipway" / "registry").exists()


def test_a_config_files_lists_gain_the_address_for_the_run() -> None:
    configured = parse_config({"ALLOWED_REGISTRIES": ["registry.example.com"]}).config
    run = _with_local_registry(configured, "127.0.0.1:5000")
    assert run.ALLOWED_REGISTRIES == ["registry.example.com", "127.0.0.1:5000"]
    assert run.INSECURE_REGISTRIES == ["127.0.0.1:5000"]
    assert configured.ALLOWED_REGISTRIES == ["registry.example.com"]  # a copy
    embedded = _with_local_registry(default_config(), "127.0.0.1:5000")
    assert embedded.ALLOWED_REGISTRIES == [] and embedded.INSECURE_REGISTRIES == []
