"""`slipway config check` on real files: the example of Quay's guide (docs/openshift.md),
a full Quay config.yaml, Quay compatibility, warnings for typos, and errors for broken files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.config import ConfigError, KubernetesExecutorConfig, load_config
from slipway.executors import registry

DATA = Path(__file__).parents[1] / "data" / "config"
SEED = DATA / "seed.yaml"
QUAY = DATA / "quay_full.yaml"
SLIPWAY = Path(sys.executable).parent / "slipway"


@pytest.fixture
def all_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "implemented_kinds", lambda: list(registry.KNOWN_KINDS))


@pytest.fixture(autouse=True)
def _data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def check(path: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_seed_example_passes(all_kinds: None) -> None:
    code, out, err = check(SEED)
    assert code == 0, err
    assert err == ""
    effective = yaml.safe_load(out)
    mode, manager = effective["BUILD_MANAGER"]
    assert mode == "ephemeral"
    assert manager["ORCHESTRATOR_PREFIX"] == "buildman/production/"
    assert manager["ORCHESTRATOR"]["REDIS_SSL"] is True
    [k8s] = manager["EXECUTORS"]
    assert k8s["SETUP_TIME"] == 180
    assert k8s["MINIMUM_RETRY_THRESHOLD"] == 0
    assert k8s["KUBERNETES_DISTRIBUTION"] == "openshift"
    assert k8s["SSH_AUTHORIZED_KEYS"] == [
        "ssh-rsa 12345 someuser@email.com",
        "ssh-rsa 67890 someuser2@email.com",
    ]
    assert k8s["RETENTION_AFTER_FINISHED"] == 120  # a default filled in
    for secret in ("quay-redis-password", "quay-password", "eyJhbGciOiJSUzI1NiIs"):
        assert secret not in out
    assert manager["ORCHESTRATOR"]["REDIS_PASSWORD"] == "*****"
    assert k8s["QUAY_PASSWORD"] == "*****" and k8s["SERVICE_ACCOUNT_TOKEN"] == "*****"
    # the real values are still there for the program itself
    executor = load_config(SEED).config.manager.EXECUTORS[0]  # type: ignore[union-attr]
    assert isinstance(executor, KubernetesExecutorConfig)
    assert executor.QUAY_PASSWORD is not None
    assert executor.QUAY_PASSWORD.get_secret_value() == "quay-password"


def test_full_quay_config_loads_without_noise(all_kinds: None) -> None:
    code, out, err = check(QUAY)
    assert code == 0, err
    assert err == ""  # Quay's own keys are not slipway's business
    for secret in (
        "db-secret-pass",
        "orchestrator-redis-secret",
        "k8s-sa-token-secret",
        "quay-pull-secret",
        "AKIAEXAMPLEACCESSKEY",
        "aws-secret-access-key-value",
        "proxy-secret",
        "buildlogs-redis-secret",
        "minio-secret",
        "minio-access",
        "40157269433064266822674401740626984898972632465622168464725100311621640999470",
    ):
        assert secret not in out
    effective = yaml.safe_load(out)
    assert effective["DB_URI"] == (
        "postgresql://quayuser:*****@quay-postgres.quay-enterprise.svc:5432/quay"
    )
    assert effective["DATABASE_SECRET_KEY"] == "*****"
    assert effective["BUILDLOGS_REDIS"]["password"] == "*****"
    driver, params = effective["DISTRIBUTED_STORAGE_CONFIG"]["default"]
    assert driver == "RadosGWStorage" and params["secret_key"] == "*****"
    assert params["access_key"] == "*****" and params["bucket_name"] == "quay-datastore"
    podman, ec2 = effective["BUILD_MANAGER"][1]["EXECUTORS"]
    assert podman["KUBERNETES_DISTRIBUTION"] == "k8s"  # Quay's "basic"
    assert podman["MINIMUM_RETRY_THRESHOLD"] == 1 and ec2["MINIMUM_RETRY_THRESHOLD"] == 0
    assert ec2["EC2_SECURITY_GROUP_IDS"] == ["sg-0123456789abcdef0"]
    assert load_config(QUAY).config.buildman_address == "quay-builder.example.com:443"


def test_typo_warnings_name_the_key(all_kinds: None, tmp_path: Path) -> None:
    code, out, err = check(
        write(
            tmp_path,
            """\
        SERVER_HOSTNAM: quay.example.com
        db_uri: postgresql://x@db/quay
        DATABASE_SECRET_KEY: not-ours
        BUILD_MANAGER:
          - ephemeral
          - ALLOWED_WORKERS_COUNT: 2
            ORCHESTRATOR: {REDIS_HOST: r, REDIS_PASWORD: pw}
            EXECUTORS:
              - EXECUTOR: local
                SETUP_TIMEOUT: 100
                ZZZ: 1
    """,
        )
    )
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 6
    assert lines[:5] == [
        "warning: unknown key SERVER_HOSTNAM: did you mean SERVER_HOSTNAME?",
        "warning: unknown key db_uri: did you mean DB_URI?",
        "warning: unknown key BUILD_MANAGER[1].ALLOWED_WORKERS_COUNT: did you mean "
        "ALLOWED_WORKER_COUNT?",
        "warning: unknown key BUILD_MANAGER[1].ORCHESTRATOR.REDIS_PASWORD: did you mean "
        "REDIS_PASSWORD?",
        "warning: unknown key BUILD_MANAGER[1].EXECUTORS[0].SETUP_TIMEOUT: did you mean "
        "SETUP_TIME?",
    ]
    assert lines[-1].startswith(
        "warning: unknown key BUILD_MANAGER[1].EXECUTORS[0].ZZZ: it is ignored (nearest known key: "
    )
    assert yaml.safe_load(out)["SERVER_HOSTNAME"] == "localhost:8080"


def test_unknown_top_level_keys_are_flagged_but_quays_are_not(
    all_kinds: None, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        """\
        SERVER_HOSTNAME: quay.example.com
        ALLOWED_WORKER_COUNT: 3
        SETUP_TIME: 100
        DISTRIBUTED_STORAGE_CONFIG: {default: [LocalStorage, {storage_path: /d}]}
        FEATURE_SOMETHING_NEWER_QUAY_ADDED: true
        KEYCLOAK_LOGIN_CONFIG: {CLIENT_ID: x}
        SECRET_KEY: not-ours
        BUILDLOGS_REDIS: {host: r}
        TOTALLY_MADE_UP: 1
        SERVER_HOSTNAMES: typo
        AVATAR_KINDS: a typo of Quay's
        BUILD_MANAGER:
          - ephemeral
          - ALLOWED_WORKERS_COUNT: 3
            EXECUTORS: [{EXECUTOR: local}]
    """,
    )
    code, out, err = check(path)
    assert code == 0  # warnings alone keep the exit status 0 ...
    assert err.splitlines() == [
        "warning: unknown key ALLOWED_WORKER_COUNT: it is a build manager key; move it into "
        "BUILD_MANAGER[1]",
        "warning: unknown key SETUP_TIME: it is an executor key; move it into an entry of "
        "BUILD_MANAGER[1].EXECUTORS",
        "warning: unknown key TOTALLY_MADE_UP: neither slipway's nor Quay's, so it is ignored "
        "(nearest known key: QUOTA_TOTAL_DELAY_SECONDS)",
        "warning: unknown key SERVER_HOSTNAMES: did you mean SERVER_HOSTNAME?",
        "warning: unknown key AVATAR_KINDS: neither slipway's nor Quay's; did you mean "
        "AVATAR_KIND (Quay's)?",
        "warning: unknown key BUILD_MANAGER[1].ALLOWED_WORKERS_COUNT: did you mean "
        "ALLOWED_WORKER_COUNT?",
    ]
    assert yaml.safe_load(out)["SERVER_HOSTNAME"] == "quay.example.com"
    # ... and --strict makes them fail a CI job, after saying the same
    result = CliRunner().invoke(app, ["config", "check", "--strict", str(path)])
    assert result.exit_code == 1
    assert "unknown key TOTALLY_MADE_UP" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: 6 warnings and --strict: fix them, or drop --strict to accept them"
    )


def test_strict_passes_a_full_quay_config(all_kinds: None) -> None:
    result = CliRunner().invoke(app, ["config", "check", "--strict", str(QUAY)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_errors_one_per_line_all_of_them(all_kinds: None, tmp_path: Path) -> None:
    code, out, err = check(
        write(
            tmp_path,
            """\
        FEATURE_BUILD_SUPPORT: maybe
        BUILD_MANAGER:
          - ephemeral
          - ORCHESTRATOR: {REDIS_HOST: r, REDIS_PASSWORD: [s3cret-list]}
            EXECUTORS:
              - EXECUTOR: kubernetes
                K8S_API_SERVER: https://api.example.com:6443
                BUILDER_VM_CONTAINER_IMAGE: qemu
                SETUP_TIME: abc
              - EXECUTOR: ec2
                EC2_REGION: eu-west-1
                EC2_INSTANCE_TYPE: [t3.large]
                COREOS_AMI: ami-1
                AWS_ACCESS_KEY: 12345
                AWS_SECRET_KEY: false
    """,
        )
    )
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: FEATURE_BUILD_SUPPORT: 'maybe' is not true or false; write e.g. "
        "FEATURE_BUILD_SUPPORT: true",
        "error: BUILD_MANAGER[1].ORCHESTRATOR.REDIS_PASSWORD: a list is not text (quote values "
        "that look like something else); write e.g. REDIS_PASSWORD: redis-password",
        "error: BUILD_MANAGER[1].EXECUTORS[0].SETUP_TIME: 'abc' is not a whole number of "
        "seconds; write e.g. SETUP_TIME: 500",
        "error: BUILD_MANAGER[1].EXECUTORS[0].K8S_API_SERVER: 'https://api.example.com:6443' "
        "must be host:port without a scheme; write e.g. K8S_API_SERVER: api.example.com:6443",
        "error: BUILD_MANAGER[1].EXECUTORS[1].EC2_INSTANCE_TYPE: a list is not text (quote "
        "values that look like something else); write e.g. EC2_INSTANCE_TYPE: m5.large",
        "error: BUILD_MANAGER[1].EXECUTORS[1].AWS_SECRET_KEY: '*****' is not text (quote values "
        "that look like something else); write e.g. AWS_SECRET_KEY: wJalr...",
    ]


def test_unimplemented_kind_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(registry, "implemented_kinds", lambda: ["local", "popen"])
    code, _out, err = check(
        write(
            tmp_path,
            """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTORS:
              - EXECUTOR: ec2
                EC2_REGION: us-east-1
                EC2_INSTANCE_TYPE: t3.large
                COREOS_AMI: ami-1
    """,
        )
    )
    assert code == 1
    assert err.splitlines() == [
        "error: BUILD_MANAGER[1].EXECUTORS[0].EXECUTOR: executor kind 'ec2' is not implemented "
        "in this version of slipway; available: local, popen"
    ]


def test_unimplemented_kind_ignored_when_builds_are_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(registry, "implemented_kinds", lambda: ["local", "popen"])
    path = write(
        tmp_path,
        "FEATURE_BUILD_SUPPORT: false\nBUILD_MANAGER: [ephemeral, "
        "{EXECUTORS: [{EXECUTOR: kubernetesPodman, K8S_API_SERVER: 'a:1'}]}]\n",
    )
    assert load_config(path).config.FEATURE_BUILD_SUPPORT is False


def test_bad_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "SERVER_HOSTNAME: a\nBUILD_MANAGER:\n  - ephemeral\n  - {EXECUTORS: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [message] = info.value.messages
    assert message.startswith(f"{path}: not valid YAML at line 5, column 1")
    assert "indentation" in message


@pytest.mark.parametrize(
    ("text", "found"), [("- a\n- b\n", "a list"), ("just text\n", "the single value 'just text'")]
)
def test_top_level_must_be_mapping(tmp_path: Path, text: str, found: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.messages == [
        f"{tmp_path}/config.yaml: the top level must be a mapping "
        f"of keys (KEY: value, one per line), but it is {found}"
    ]


def test_duplicate_yaml_key_warns(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "SERVER_HOSTNAME: a\nSERVER_HOSTNAME: b\n"))
    assert loaded.config.SERVER_HOSTNAME == "b"
    assert loaded.warnings == [
        f"{tmp_path}/config.yaml line 2: key SERVER_HOSTNAME is given twice; the last one is used"
    ]


def test_show_without_file_prints_embedded_default() -> None:
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0
    effective = yaml.safe_load(result.stdout)
    assert effective["BUILD_MANAGER"][1]["EXECUTORS"][0]["EXECUTOR"] == "local"


def test_real_command_missing_file_and_masked_error(tmp_path: Path) -> None:
    missing = subprocess.run(
        [str(SLIPWAY), "config", "check", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert f"{tmp_path}/nope.yaml: no such file" in missing.stderr
    path = write(
        tmp_path,
        """\
        DB_URI: [postgresql://u:pw-in-list@db/x]
        BUILD_MANAGER:
          - ephemeral
          - EXECUTORS: [{EXECUTOR: local, QUAY_PASSWORD: {nested: hunter2}}]
    """,
    )
    bad = subprocess.run(
        [str(SLIPWAY), "config", "check", str(path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert "BUILD_MANAGER[1].EXECUTORS[0].QUAY_PASSWORD: a mapping is not text" in bad.stderr
    assert "DB_URI: a list is not text" in bad.stderr
    assert "hunter2" not in bad.stderr and "pw-in-list" not in bad.stderr
