"""The worker's environment: Quay's variables (and its misspelling), slipway's additions,
and clear errors for bad values; `slipway worker` exits 2 on them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.worker.environment import (
    DEFAULT_MAX_BYTES,
    WorkerEnvironmentError,
    load_environment,
)

BASE = {"TOKEN": "jwt-secret-value", "SERVER": "manager:8443"}


def test_defaults() -> None:
    env = load_environment(BASE)
    assert env.server == "manager:8443"
    assert env.container_runtime == "podman"
    assert env.isolation == "chroot"
    assert env.insecure is False
    assert env.context_max_bytes == DEFAULT_MAX_BYTES and env.context_max_files == 100_000
    assert env.heartbeat_interval == 2.0
    assert "jwt-secret-value" not in repr(env)


def test_quay_variables_and_slipway_additions() -> None:
    env = load_environment(
        {
            **BASE,
            "BUILD_UUID": "1234",
            "CONTAINER_RUNTIME": "Buildah",
            "BULDAH_ISOLATION": "oci",  # Quay's spelling
            "INSECURE": "true",
            "DOCKER_HOST": "unix:///var/run/docker.sock",
            "REGISTRY_HOSTNAME": "quay.example.com",
            "INSECURE_REGISTRIES": " 127.0.0.1:5000, Registry.Local ",
            "CONTEXT_MAX_BYTES": "1048576",
            "CONTEXT_MAX_FILES": "10",
        }
    )
    assert env.container_runtime == "buildah" and env.isolation == "oci" and env.insecure
    assert env.registry_is_insecure("127.0.0.1:5000") and env.registry_is_insecure("registry.local")
    assert not env.registry_is_insecure("quay.example.com")
    assert (env.context_max_bytes, env.context_max_files) == (1048576, 10)
    assert (
        load_environment(
            {**BASE, "BUILDAH_ISOLATION": "rootless", "BULDAH_ISOLATION": "oci"}
        ).isolation
        == "rootless"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"TOKEN": ""}, "TOKEN is not set"),
        ({"SERVER": ""}, "SERVER is not set"),
        ({"CONTAINER_RUNTIME": "rkt"}, "CONTAINER_RUNTIME='rkt' is not supported: use one of"),
        ({"INSECURE": "maybe"}, "INSECURE='maybe' is not a boolean"),
        ({"CONTEXT_MAX_BYTES": "4GB"}, "CONTEXT_MAX_BYTES='4GB' is not a whole number"),
        ({"CONTEXT_MAX_FILES": "0"}, "CONTEXT_MAX_FILES='0' must be greater than 0"),
        (
            {"TLS_CERT_PATH": "/nonexistent/ca.pem"},
            "TLS_CERT_PATH='/nonexistent/ca.pem' is not a readable file",
        ),
    ],
)
def test_bad_values_are_named_with_the_fix(changes: dict[str, str], message: str) -> None:
    with pytest.raises(WorkerEnvironmentError, match=message.replace("(", r"\(")) as err:
        load_environment({**BASE, **changes})
    assert "jwt-secret-value" not in str(err.value)


def test_cli_reports_a_bad_environment_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TOKEN", "SERVER")}
    env.update({"TOKEN": "jwt-secret-value", "SERVER": "m:1", "CONTAINER_RUNTIME": "rkt"})
    slipway = Path(sys.executable).parent / "slipway"  # the installed console script
    result = subprocess.run([str(slipway), "worker"], env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "CONTAINER_RUNTIME='rkt' is not supported" in result.stderr
    assert "jwt-secret-value" not in result.stderr + result.stdout
