"""The Ignition config a CoreOS worker machine boots with (EC2 user data, the VM's USERDATA)."""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trustme

from slipway.config.models import EC2ExecutorConfig
from slipway.executors.base import ExecutorError, WorkerSpec
from slipway.executors.bootstrap import (
    CONTAINER_CA_PATH,
    LIFETIME_UNIT,
    METADATA_BLOCK_UNIT,
    WORKER_UNIT,
    files_by_path,
    ignition_config,
    ignition_json,
)

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data" / "ignition" / "ignition-3.4.schema.json").read_text()
)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.registration.signature"
PASSWORD = "s3cr3t-pull-password"
PROXY = "http://proxyuser:proxypass@proxy.internal:3128"
KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4SrYkfM8Xu op@example", "ssh-rsa AAAAB3Nza== o2"]


@pytest.fixture
def ca_files(tmp_path: Path) -> tuple[Path, Path]:
    main, extra = tmp_path / "ssl.cert", tmp_path / "extra.pem"
    trustme.CA().cert_pem.write_to_path(str(main))
    trustme.CA().cert_pem.write_to_path(str(extra))
    return main, extra


def executor_config(values: dict[str, Any]) -> EC2ExecutorConfig:
    """The executor's validated config, as the manager hands it over (None: the default)."""
    required = {"EC2_REGION": "us-east-1", "EC2_INSTANCE_TYPE": "t3.large", "COREOS_AMI": "ami-1"}
    return EC2ExecutorConfig.model_validate(
        required | {k: v for k, v in values.items() if v is not None}
    )


def _spec() -> WorkerSpec:
    return WorkerSpec(
        build_id="b-123",
        job_id="job-9",
        namespace="acme",
        registration_token=TOKEN,
        manager_address="buildman.example:443",
        environment={
            "TOKEN": TOKEN,
            "SERVER": "buildman.example:443",
            "BUILD_UUID": "b-123",
            "CONTAINER_RUNTIME": "podman",
            "BUILDAH_ISOLATION": "chroot",
            "BULDAH_ISOLATION": "chroot",
            "INSECURE": "false",
            "TLS_CERT_PATH": "/etc/slipway/on-the-manager/ssl.cert",
            "REGISTRY_HOSTNAME": "registry.example",
        },
    )


def _config(ca_files: tuple[Path, Path], **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "EXECUTOR": "ec2",
        "CONTAINER_RUNTIME": "podman",
        "WORKER_IMAGE": "registry.example:5000/builders/worker",
        "WORKER_TAG": "v1.2",
        "QUAY_USERNAME": "robot+puller",
        "QUAY_PASSWORD": PASSWORD,
        "SSH_AUTHORIZED_KEYS": KEYS,
        "CA_CERT": str(ca_files[0]),
        "EXTRA_CA_CERTS": [str(ca_files[1])],
        "HTTP_PROXY": PROXY,
        "HTTPS_PROXY": PROXY,
        "NO_PROXY": "localhost,.internal",
        "MAX_LIFETIME_S": 5400,
    }
    values.update(overrides)
    return executor_config(values)


def _unit(document: dict[str, Any], name: str) -> str:
    units = {u["name"]: u for u in document["systemd"]["units"]}
    assert units[name]["enabled"] is True
    return str(units[name]["contents"])


def _directives(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


def _env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _file_modes(document: dict[str, Any]) -> dict[str, int]:
    return {f["path"]: f["mode"] for f in document["storage"]["files"]}


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_document_is_valid_ignition_3(ca_files: tuple[Path, Path], runtime: str) -> None:
    config = _config(ca_files, CONTAINER_RUNTIME=runtime)
    document = json.loads(ignition_json(config, _spec(), block_metadata=True))
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["ignition"]["version"] == "3.4.0"


def test_schema_rejects_what_ignition_rejects() -> None:
    # The schema is a real check: a misspelt key, a relative path or a missing version fails.
    bad_documents = [
        {"storage": {}},
        {"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "etc/x"}]}},
        {"ignition": {"version": "3.4.0"}, "systemd": {"units": [{"name": "x", "enable": True}]}},
        {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "keys": []}]}},
    ]
    for document in bad_documents:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_podman_worker_unit_runs_the_image_with_env_file_socket_and_ca(
    ca_files: tuple[Path, Path],
) -> None:
    document = ignition_config(_config(ca_files), _spec())
    unit = _unit(document, WORKER_UNIT)
    [start] = _directives(unit, "ExecStart")
    argv = shlex.split(start)
    assert argv[:2] == ["/usr/bin/podman", "run"]
    assert argv[-1] == "registry.example:5000/builders/worker:v1.2"
    env_file = argv[argv.index("--env-file") + 1]
    mounts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-v"]
    assert "/run/podman/podman.sock:/run/podman/podman.sock" in mounts
    ca_mount = next(m for m in mounts if m.split(":")[1] == CONTAINER_CA_PATH)
    assert "podman.socket" in _directives(unit, "Wants")[0].split()

    files = files_by_path(document)
    env = _env_lines(files[env_file])
    assert _file_modes(document)[env_file] == 0o600
    assert env["TOKEN"] == TOKEN
    assert env["SERVER"] == "buildman.example:443"
    assert env["BUILD_UUID"] == "b-123"
    assert env["CONTAINER_RUNTIME"] == "podman"
    assert env["BUILDAH_ISOLATION"] == env["BULDAH_ISOLATION"] == "chroot"
    assert env["INSECURE"] == "false"
    assert env["DOCKER_HOST"] == "unix:///run/podman/podman.sock"
    # The manager's own CA path means nothing in the VM: the worker gets the mounted bundle.
    assert env["TLS_CERT_PATH"] == CONTAINER_CA_PATH
    bundle = files[ca_mount.split(":")[0]]
    assert ca_files[0].read_text() in bundle and ca_files[1].read_text() in bundle


def test_docker_worker_unit_uses_the_docker_socket(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files, CONTAINER_RUNTIME="docker"), _spec())
    unit = _unit(document, WORKER_UNIT)
    argv = shlex.split(_directives(unit, "ExecStart")[0])
    assert argv[:2] == ["/usr/bin/docker", "run"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in argv
    env = _env_lines(files_by_path(document)[argv[argv.index("--env-file") + 1]])
    assert env["CONTAINER_RUNTIME"] == "docker"
    assert env["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    # docker pulls in the daemon: the daemon gets the proxies through a drop-in.
    dropin = files_by_path(document)["/etc/systemd/system/docker.service.d/90-slipway-proxy.conf"]
    assert "EnvironmentFile=" in dropin


def test_pull_logs_in_through_an_auth_file(ca_files: tuple[Path, Path]) -> None:
    for runtime in ("podman", "docker"):
        document = ignition_config(_config(ca_files, CONTAINER_RUNTIME=runtime), _spec())
        unit = _unit(document, WORKER_UNIT)
        [pull] = [p for p in _directives(unit, "ExecStartPre") if " pull " in p]
        argv = shlex.split(pull)
        assert argv[-1] == "registry.example:5000/builders/worker:v1.2"
        flag = "--authfile" if runtime == "podman" else "--config"
        location = argv[argv.index(flag) + 1]
        files = files_by_path(document)
        auth_path = location if runtime == "podman" else f"{location}/config.json"
        auths = json.loads(files[auth_path])["auths"]
        assert base64.b64decode(auths["registry.example:5000"]["auth"]).decode() == (
            f"robot+puller:{PASSWORD}"
        )
        assert _file_modes(document)[auth_path] == 0o600
        # The pull happens before the worker starts, in the same unit.
        assert unit.index(pull) < unit.index("ExecStart=")


def test_no_login_without_credentials(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files, QUAY_USERNAME=None, QUAY_PASSWORD=None), _spec())
    assert not any("auth" in path for path in files_by_path(document))
    assert "--authfile" not in _unit(document, WORKER_UNIT)


def test_proxies_reach_worker_and_pull(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files), _spec())
    files = files_by_path(document)
    unit = _unit(document, WORKER_UNIT)
    argv = shlex.split(_directives(unit, "ExecStart")[0])
    env = _env_lines(files[argv[argv.index("--env-file") + 1]])
    assert env["HTTP_PROXY"] == PROXY and env["HTTPS_PROXY"] == PROXY
    assert env["NO_PROXY"] == "localhost,.internal"
    # The pull runs in the unit's environment, loaded from a 0600 file.
    [pull_env] = _directives(unit, "EnvironmentFile")
    assert _file_modes(document)[pull_env] == 0o600
    assert env["http_proxy"] == PROXY and env["no_proxy"] == "localhost,.internal"
    assert f'HTTP_PROXY="{PROXY}"' in files[pull_env]
    assert f'HTTPS_PROXY="{PROXY}"' in files[pull_env]
    assert 'NO_PROXY="localhost,.internal"' in files[pull_env]


def test_ca_certificates_go_into_the_trust_store(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files), _spec())
    anchors = {
        p: c
        for p, c in files_by_path(document).items()
        if p.startswith("/etc/pki/ca-trust/source/anchors/")
    }
    assert sorted(anchors.values()) == sorted(p.read_text() for p in ca_files)
    assert "ExecStartPre=/usr/bin/update-ca-trust extract" in _unit(document, WORKER_UNIT)


def test_ssh_keys_on_core(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files), _spec())
    assert document["passwd"]["users"] == [{"name": "core", "sshAuthorizedKeys": KEYS}]


def test_no_secret_on_a_command_line(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files), _spec(), block_metadata=True)
    secrets = [TOKEN, PASSWORD, "proxypass", base64.b64encode(PASSWORD.encode()).decode()]
    for unit in document["systemd"]["units"]:
        for line in unit["contents"].splitlines():
            for secret in secrets:
                assert secret not in line, f"{unit['name']}: {line}"
    # ...and the secrets are in the document at all only inside 0600 files.
    for f in document["storage"]["files"]:
        contents = files_by_path({"storage": {"files": [f]}})[f["path"]]
        if any(secret in contents for secret in secrets):
            assert f["mode"] == 0o600, f["path"]


def test_machine_powers_off_after_max_lifetime(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files), _spec())
    unit = _unit(document, LIFETIME_UNIT)
    assert _directives(unit, "ExecStart") == ["/usr/bin/sleep 5400"]
    assert "poweroff" in _directives(unit, "ExecStopPost")[0]
    # The worker's end powers the machine off too, except with DEBUG (kept to inspect).
    assert "poweroff" in _unit(document, WORKER_UNIT)
    kept = ignition_config(_config(ca_files, DEBUG=True), _spec())
    assert "poweroff" not in _unit(kept, WORKER_UNIT)
    assert "poweroff" in _unit(kept, LIFETIME_UNIT)


def test_metadata_block_is_a_parameter(ca_files: tuple[Path, Path]) -> None:
    plain = ignition_config(_config(ca_files), _spec())
    assert METADATA_BLOCK_UNIT not in {u["name"] for u in plain["systemd"]["units"]}

    blocked = ignition_config(_config(ca_files), _spec(), block_metadata=True)
    block_unit = _unit(blocked, METADATA_BLOCK_UNIT)
    [rules_cmd] = _directives(block_unit, "ExecStart")
    rules_path = shlex.split(rules_cmd)[-1]
    rules = files_by_path(blocked)[rules_path]
    assert rules.count("ip daddr 169.254.169.254 reject") == 2  # host network and bridged
    assert "hook output" in rules and "hook forward" in rules
    # The worker is ordered after the block and does not start without it.
    worker = _unit(blocked, WORKER_UNIT)
    assert METADATA_BLOCK_UNIT in _directives(worker, "After")[0].split()
    assert _directives(worker, "Requires") == [METADATA_BLOCK_UNIT]
    assert f"Before={WORKER_UNIT}" in block_unit


def test_missing_ca_file_names_the_path(ca_files: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(ExecutorError, match=str(missing)):
        ignition_config(_config(ca_files, EXTRA_CA_CERTS=[str(missing)]), _spec())
    not_pem = tmp_path / "garbage.txt"
    not_pem.write_text("hello")
    with pytest.raises(ExecutorError, match="no PEM certificate"):
        ignition_config(_config(ca_files, CA_CERT=str(not_pem)), _spec())


def test_without_ca_the_manager_path_is_not_passed(ca_files: tuple[Path, Path]) -> None:
    document = ignition_config(_config(ca_files, CA_CERT=None, EXTRA_CA_CERTS=[]), _spec())
    unit = _unit(document, WORKER_UNIT)
    argv = shlex.split(_directives(unit, "ExecStart")[0])
    env = _env_lines(files_by_path(document)[argv[argv.index("--env-file") + 1]])
    assert "TLS_CERT_PATH" not in env
    assert not any(arg.endswith(CONTAINER_CA_PATH + ":ro") for arg in argv)


def test_value_with_line_break_is_refused(ca_files: tuple[Path, Path]) -> None:
    spec = _spec()
    bad = WorkerSpec(**{**spec.__dict__, "environment": {**spec.environment, "X": "a\nB=c"}})
    with pytest.raises(ExecutorError, match="'X'"):
        ignition_config(_config(ca_files), bad)


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian package nftables)")
def test_metadata_rules_are_valid_nftables(ca_files: tuple[Path, Path], tmp_path: Path) -> None:
    blocked = ignition_config(_config(ca_files), _spec(), block_metadata=True)
    rules_path = shlex.split(_directives(_unit(blocked, METADATA_BLOCK_UNIT), "ExecStart")[0])[-1]
    rules = tmp_path / "rules.nft"
    rules.write_text(files_by_path(blocked)[rules_path])
    # --check parses and validates the ruleset without applying it.
    checked = subprocess.run(["nft", "--check", "-f", str(rules)], capture_output=True, text=True)
    if checked.returncode != 0 and "Operation not permitted" in checked.stderr:
        pytest.skip("nft --check needs CAP_NET_ADMIN here")
    assert checked.returncode == 0, checked.stderr
