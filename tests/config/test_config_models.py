"""Each table of docs/configuration.md: its defaults, and a bad value whose message names the YAML
path, the value and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from slipway.config import (
    ConfigError,
    EC2ExecutorConfig,
    KubernetesExecutorConfig,
    LoadedConfig,
    LocalExecutorConfig,
    default_config,
    effective_config,
    load_config,
)
from slipway.executors import registry


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # every kind counts as implemented here; the refusal of missing kinds has its own test
    monkeypatch.setattr(registry, "implemented_kinds", lambda: list(registry.KNOWN_KINDS))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def load(tmp_path: Path, text: str) -> LoadedConfig:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.messages


def manager_with(executor: str) -> str:
    """A config whose one executor is `executor` (YAML lines of the mapping)."""
    body = textwrap.indent(textwrap.dedent(executor).strip(), " " * 8)
    return "BUILD_MANAGER:\n  - ephemeral\n  - EXECUTORS:\n      - " + body.lstrip() + "\n"


K8S = """\
EXECUTOR: kubernetes
K8S_API_SERVER: api.example.com:6443
BUILDER_VM_CONTAINER_IMAGE: registry.example.com/qemu:v1
"""


# --- top level ---------------------------------------------------------------------------


def test_top_level_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "FEATURE_BUILD_SUPPORT: true\n").config
    assert config.FEATURE_BUILD_SUPPORT is True
    assert config.build_manager_mode == "ephemeral"
    assert config.manager is not None
    assert [e.EXECUTOR for e in config.manager.EXECUTORS] == ["local"]
    assert config.SERVER_HOSTNAME == "localhost:8080"
    assert config.BUILDMAN_HOSTNAME == "localhost"
    assert config.buildman_address == "localhost:50051"
    assert tmp_path / "xdg" / "slipway" == config.DATA_DIR
    assert f"sqlite:///{tmp_path}/xdg/slipway/slipway.db" == config.DB_URI
    assert config.API_LISTEN_ADDRESS == "127.0.0.1:8700"
    assert config.GRPC_LISTEN_ADDRESS == "127.0.0.1:50051"
    assert config.PUBLIC_URL == "http://127.0.0.1:8700"
    assert config.ALLOWED_REGISTRIES == [] and config.INSECURE_REGISTRIES == []
    assert config.REGISTRY_CREDENTIALS == {}
    assert config.BUILD_UPLOAD_MAX_BYTES == 1 << 30
    assert config.BUILD_CONTEXT_MAX_BYTES == 4 << 30
    assert config.BUILD_CONTEXT_MAX_FILES == 100_000
    assert config.NAMESPACE_MAX_QUEUED_BUILDS == 1000
    assert config.BUILDMAN_TLS_CERT is None and config.BUILDMAN_TLS_KEY is None


def test_embedded_default_is_one_local_executor() -> None:
    config = default_config()
    assert config.manager is not None
    assert [e.EXECUTOR for e in config.manager.EXECUTORS] == ["local"]
    assert load_config(None).config.manager == config.manager


def test_data_dir_without_xdg_and_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tmp_path / "home" / ".local" / "share" / "slipway" == default_config().DATA_DIR
    config = load(tmp_path, "DATA_DIR: ~/builds\n").config
    assert tmp_path / "home" / "builds" == config.DATA_DIR
    assert f"sqlite:///{tmp_path}/home/builds/slipway.db" == config.DB_URI


def test_addresses(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        SERVER_HOSTNAME: quay.example.com
        API_LISTEN_ADDRESS: 0.0.0.0:9000
        GRPC_LISTEN_ADDRESS: 0.0.0.0:7000
    """,
    ).config
    assert config.PUBLIC_URL == "http://127.0.0.1:9000"
    assert config.BUILDMAN_HOSTNAME == "quay.example.com"
    assert config.buildman_address == "quay.example.com:7000"
    config = load(tmp_path, "BUILDMAN_HOSTNAME: builder.example.com:443\n").config
    assert config.buildman_address == "builder.example.com:443"


def test_top_level_bad_value(tmp_path: Path) -> None:
    messages = errors(tmp_path, "BUILD_UPLOAD_MAX_BYTES: lots\nAPI_LISTEN_ADDRESS: 8700\n")
    assert (
        "BUILD_UPLOAD_MAX_BYTES: 'lots' is not a whole number of bytes; write e.g. "
        "BUILD_UPLOAD_MAX_BYTES: 1073741824"
    ) in messages
    assert any(
        m.startswith("API_LISTEN_ADDRESS: '8700' is not host:port")
        and "write e.g. API_LISTEN_ADDRESS: 127.0.0.1:8700" in m
        for m in messages
    )


@pytest.mark.parametrize("value", ["ephemeral", "[ephemeral]", "[builder, {}]", "{a: 1}"])
def test_build_manager_bad_form(tmp_path: Path, value: str) -> None:
    [message] = errors(tmp_path, f"BUILD_MANAGER: {value}\n")
    assert message.startswith("BUILD_MANAGER: ")
    assert "BUILD_MANAGER: [ephemeral, {EXECUTORS:" in message
    assert "BUILD_MANAGER: [external]" in message


def test_build_manager_external(tmp_path: Path) -> None:
    config = load(tmp_path, "BUILD_MANAGER: [external]\n").config
    assert config.build_manager_mode == "external" and config.manager is None
    assert effective_config(config)["BUILD_MANAGER"] == ["external"]


def test_tls_cert_needs_key(tmp_path: Path) -> None:
    [message] = errors(tmp_path, "BUILDMAN_TLS_CERT: /etc/slipway/tls.crt\n")
    assert message.startswith("BUILDMAN_TLS_KEY: ")
    assert "give both" in message


def test_registry_credentials_masked(tmp_path: Path) -> None:
    text = """\
        REGISTRY_CREDENTIALS:
          registry.example.com:5000: {username: robot, password: hunter2-pass}
          other.example.com: {username: [x], password: 123456789}
    """
    messages = errors(tmp_path, text)
    assert messages == [
        "REGISTRY_CREDENTIALS['other.example.com'].username: a list is not "
        "text (quote values that look like something else); write e.g. "
        "username: robot"
    ]
    config = load(tmp_path, text.replace("[x]", "bot")).config
    assert config.REGISTRY_CREDENTIALS["other.example.com"].password.get_secret_value() == (
        "123456789"
    )
    shown = str(effective_config(config))
    assert "hunter2-pass" not in shown and "123456789" not in shown and "*****" in shown


# --- manager -------------------------------------------------------------------------------


def test_manager_defaults(tmp_path: Path) -> None:
    manager = load(tmp_path, manager_with("EXECUTOR: local")).config.manager
    assert manager is not None
    assert manager.ALLOWED_WORKER_COUNT == 1
    assert manager.ORCHESTRATOR_PREFIX == ""
    assert manager.ORCHESTRATOR is None
    assert manager.JOB_REGISTRATION_TIMEOUT == 30
    assert manager.MACHINE_MAX_TIME == 7200
    assert manager.NAMESPACE_LIMITS == {}
    assert manager.HEARTBEAT_EXPIRY == 60
    assert manager.RETRY_AFTER == 10
    assert manager.REDIS_SKIP_KEYSPACE_EVENT_SETUP is False


def test_manager_bad_values(tmp_path: Path) -> None:
    messages = errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - ALLOWED_WORKER_COUNT: 0
            JOB_REGISTRATION_TIMEOUT: 30s
            NAMESPACE_LIMITS: {team-a: 0}
            EXECUTORS: [{EXECUTOR: local}]
    """,
    )
    assert messages == [
        "BUILD_MANAGER[1].ALLOWED_WORKER_COUNT: 0 is out of range; it must be at least 1; "
        "write e.g. ALLOWED_WORKER_COUNT: 1",
        "BUILD_MANAGER[1].JOB_REGISTRATION_TIMEOUT: '30s' is not a whole number of seconds; "
        "write e.g. JOB_REGISTRATION_TIMEOUT: 30",
        "BUILD_MANAGER[1].NAMESPACE_LIMITS.team-a: 0 is out of range; it must be at least 1; "
        "write e.g. NAMESPACE_LIMITS: {team-a: 2}",
    ]


def test_manager_needs_executors(tmp_path: Path) -> None:
    assert errors(tmp_path, "BUILD_MANAGER: [ephemeral, {ALLOWED_WORKER_COUNT: 2}]\n") == [
        "BUILD_MANAGER[1].EXECUTORS is required; add e.g. EXECUTORS: [{EXECUTOR: local}]"
    ]
    [message] = errors(tmp_path, "BUILD_MANAGER: [ephemeral, {EXECUTORS: []}]\n")
    assert message.startswith("BUILD_MANAGER[1].EXECUTORS: a list is empty")


def test_legacy_executor_form(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTOR: popen
            EXECUTOR_CONFIG:
              SETUP_TIME: 90
    """,
    ).config.manager
    assert manager is not None
    [executor] = manager.EXECUTORS
    assert isinstance(executor, LocalExecutorConfig)
    assert executor.SETUP_TIME == 90 and executor.NAME == "popen"


def test_legacy_form_errors_point_at_what_was_written(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTOR: local
            EXECUTOR_CONFIG: {SETUP_TIME: soon}
    """,
    ) == [
        "BUILD_MANAGER[1].EXECUTOR_CONFIG.SETUP_TIME: 'soon' is not a whole number of "
        "seconds; write e.g. SETUP_TIME: 500"
    ]


def test_legacy_and_list_form_together(tmp_path: Path) -> None:
    [message] = errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTOR: local
            EXECUTOR_CONFIG: {}
            EXECUTORS: [{EXECUTOR: local}]
    """,
    )
    assert message.startswith("BUILD_MANAGER[1].EXECUTORS: give either EXECUTORS")
    assert "not both" in message


def test_duplicate_name(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTORS:
              - {EXECUTOR: local, NAME: fast}
              - {EXECUTOR: local}
              - {EXECUTOR: popen, NAME: fast}
    """,
    ) == [
        "BUILD_MANAGER[1].EXECUTORS[2].NAME: 'fast' is already the NAME of EXECUTORS[0]; "
        "each executor needs a unique NAME; write e.g. NAME: fast-2"
    ]


def test_redis_skip_keyspace_at_manager_level_overrides(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - REDIS_SKIP_KEYSPACE_EVENT_SETUP: true
            ORCHESTRATOR: {REDIS_HOST: redis.example.com, REDIS_SKIP_KEYSPACE_EVENT_SETUP: false}
            EXECUTORS: [{EXECUTOR: local}]
    """,
    ).config.manager
    assert manager is not None and manager.ORCHESTRATOR is not None
    assert manager.ORCHESTRATOR.REDIS_SKIP_KEYSPACE_EVENT_SETUP is True
    assert manager.REDIS_SKIP_KEYSPACE_EVENT_SETUP is True


# --- orchestrator --------------------------------------------------------------------------


def test_orchestrator_defaults(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - ORCHESTRATOR: {REDIS_HOST: redis.example.com}
            EXECUTORS: [{EXECUTOR: local}]
    """,
    ).config.manager
    assert manager is not None
    redis = manager.ORCHESTRATOR
    assert redis is not None
    assert (redis.REDIS_HOST, redis.REDIS_PORT, redis.REDIS_DB) == ("redis.example.com", 6379, 0)
    assert redis.REDIS_PASSWORD is None and redis.REDIS_SSL is False
    assert redis.REDIS_CA_CERT is None and redis.REDIS_CERT_AND_KEY is None
    assert redis.REDIS_SKIP_KEYSPACE_EVENT_SETUP is False


def test_orchestrator_bad_values(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - ORCHESTRATOR: {REDIS_PORT: 70000, REDIS_SSL: sometimes}
            EXECUTORS: [{EXECUTOR: local}]
    """,
    ) == [
        "BUILD_MANAGER[1].ORCHESTRATOR.REDIS_HOST is required; add e.g. "
        "REDIS_HOST: quay-redis.example.com",
        "BUILD_MANAGER[1].ORCHESTRATOR.REDIS_PORT: 70000 is out of range; it must be at most "
        "65535; write e.g. REDIS_PORT: 6379",
        "BUILD_MANAGER[1].ORCHESTRATOR.REDIS_SSL: 'sometimes' is not true or false; write e.g. "
        "REDIS_SSL: true",
    ]


def test_prefix_inside_orchestrator(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - ORCHESTRATOR:
              REDIS_HOST: redis.example.com
              ORCHESTRATOR_PREFIX: buildman/production/
            EXECUTORS: [{EXECUTOR: local}]
    """,
    ) == [
        "BUILD_MANAGER[1].ORCHESTRATOR.ORCHESTRATOR_PREFIX: a key ending in _PREFIX does "
        "not belong inside ORCHESTRATOR; move it one level up: "
        "BUILD_MANAGER[1].ORCHESTRATOR_PREFIX: buildman/production/"
    ]


# --- all executors -------------------------------------------------------------------------


def test_all_executor_defaults(tmp_path: Path) -> None:
    manager = load(tmp_path, manager_with(K8S)).config.manager
    assert manager is not None
    [executor] = manager.EXECUTORS
    assert executor.NAME == "kubernetes"
    assert executor.SETUP_TIME == 500
    assert executor.MINIMUM_RETRY_THRESHOLD == 0
    assert executor.NAMESPACE_WHITELIST is None
    assert executor.STAGED_ROLLOUT is None
    assert executor.CONTAINER_RUNTIME == "docker"
    assert executor.WORKER_IMAGE == "quay.io/slipway/slipway-worker"
    from slipway import __version__

    assert __version__ == executor.WORKER_TAG
    assert executor.QUAY_USERNAME is None and executor.QUAY_PASSWORD is None
    assert executor.SSH_AUTHORIZED_KEYS == [] and executor.EXTRA_CA_CERTS == []
    assert executor.CA_CERT is None
    assert (executor.HTTP_PROXY, executor.HTTPS_PROXY, executor.NO_PROXY) == (None, None, None)
    assert executor.MAX_LIFETIME_S == 10800
    assert executor.DEBUG is False


def test_ca_cert_defaults_to_ssl_cert_next_to_config(tmp_path: Path) -> None:
    (tmp_path / "ssl.cert").write_text("-----BEGIN CERTIFICATE-----\n")
    manager = load(tmp_path, manager_with("EXECUTOR: local")).config.manager
    assert manager is not None
    assert tmp_path / "ssl.cert" == manager.EXECUTORS[0].CA_CERT


def test_all_executor_bad_values(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        manager_with("""\
        EXECUTOR: local
        SETUP_TIME: abc
        STAGED_ROLLOUT: 1.5
        CONTAINER_RUNTIME: rkt
        MINIMUM_RETRY_THRESHOLD: -1
    """),
    ) == [
        "BUILD_MANAGER[1].EXECUTORS[0].SETUP_TIME: 'abc' is not a whole number of seconds; "
        "write e.g. SETUP_TIME: 500",
        "BUILD_MANAGER[1].EXECUTORS[0].MINIMUM_RETRY_THRESHOLD: -1 is out of range; it must be "
        "at least 0; write e.g. MINIMUM_RETRY_THRESHOLD: 1",
        "BUILD_MANAGER[1].EXECUTORS[0].STAGED_ROLLOUT: 1.5 is out of range; it must be at most "
        "1.0; write e.g. STAGED_ROLLOUT: 0.25",
        "BUILD_MANAGER[1].EXECUTORS[0].CONTAINER_RUNTIME: 'rkt' is not allowed; allowed: "
        "'docker', 'podman' or 'buildah'; write e.g. CONTAINER_RUNTIME: podman",
    ]


def test_unknown_executor_kind(tmp_path: Path) -> None:
    assert errors(tmp_path, manager_with("EXECUTOR: nomad")) == [
        "BUILD_MANAGER[1].EXECUTORS[0].EXECUTOR: 'nomad' is not an executor kind; valid kinds: "
        "local (or Quay's popen), kubernetes, kubernetesPodman, ec2; write e.g. "
        "EXECUTOR: kubernetes"
    ]


# --- local ---------------------------------------------------------------------------------


def test_local_defaults_and_popen_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "shutil.which", lambda name: "/usr/bin/buildah" if name in ("buildah", "docker") else None
    )
    manager = load(
        tmp_path,
        """\
        BUILD_MANAGER:
          - ephemeral
          - EXECUTORS:
              - EXECUTOR: local
              - {EXECUTOR: popen, BUILDER_BINARY_LOCATION: /usr/bin/quay-builder}
    """,
    ).config.manager
    assert manager is not None
    first, second = manager.EXECUTORS
    assert isinstance(first, LocalExecutorConfig) and isinstance(second, LocalExecutorConfig)
    assert first.CONTAINER_RUNTIME == "buildah"
    assert first.BUILDER_BINARY_LOCATION is None
    assert second.NAME == "popen" and second.BUILDER_BINARY_LOCATION == "/usr/bin/quay-builder"
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert (
        load(tmp_path, manager_with("EXECUTOR: local"))
        .config.manager.EXECUTORS[  # type: ignore[union-attr]
            0
        ]
        .CONTAINER_RUNTIME
        == "podman"
    )


def test_local_bad_value(tmp_path: Path) -> None:
    assert errors(tmp_path, manager_with("EXECUTOR: local\nBUILDER_BINARY_LOCATION: [a, b]")) == [
        "BUILD_MANAGER[1].EXECUTORS[0].BUILDER_BINARY_LOCATION: a list is not text (quote "
        "values that look like something else); write e.g. "
        "BUILDER_BINARY_LOCATION: /usr/local/bin/quay-builder"
    ]


# --- kubernetes ----------------------------------------------------------------------------


def test_kubernetes_defaults(tmp_path: Path) -> None:
    manager = load(tmp_path, manager_with(K8S)).config.manager
    assert manager is not None
    k8s = manager.EXECUTORS[0]
    assert isinstance(k8s, KubernetesExecutorConfig)
    assert k8s.BUILDER_NAMESPACE == "builder"
    assert k8s.K8S_API_TLS_CA is None
    assert k8s.SERVICE_ACCOUNT_NAME == "quay-builder-sa" and k8s.SERVICE_ACCOUNT_TOKEN is None
    assert k8s.K8S_API_TLS_CERT is None and k8s.K8S_API_TLS_KEY is None
    assert k8s.KUBERNETES_DISTRIBUTION == "k8s"
    assert (k8s.CONTAINER_MEMORY_REQUEST, k8s.CONTAINER_MEMORY_LIMITS) == ("3968Mi", "5120Mi")
    assert (k8s.CONTAINER_CPU_REQUEST, k8s.CONTAINER_CPU_LIMITS) == ("500m", "1000m")
    assert k8s.NODE_SELECTOR_LABEL_KEY == "beta.kubernetes.io/instance-type"
    assert k8s.NODE_SELECTOR_LABEL_VALUE == ""
    assert (k8s.VOLUME_SIZE, k8s.VM_MEMORY_LIMIT) == ("32G", "4G")
    assert f"{k8s.WORKER_IMAGE}:{k8s.WORKER_TAG}" == k8s.BUILDER_CONTAINER_IMAGE
    assert (k8s.IMAGE_PULL_SECRET_NAME, k8s.IMAGE_PULL_POLICY) == ("builder", "Always")
    assert (k8s.MAXIMUM_JOB_TIME, k8s.RETENTION_AFTER_FINISHED) == (7200, 120)
    assert (k8s.DNS_POLICY, k8s.K8S_API_TIMEOUT) == ("Default", 20)


def test_kubernetes_basic_distribution_and_podman_kind(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        manager_with("""\
        EXECUTOR: kubernetesPodman
        K8S_API_SERVER: api.example.com:6443
        KUBERNETES_DISTRIBUTION: basic
        CONTAINER_CPU_LIMITS: 1
    """),
    ).config.manager
    assert manager is not None
    k8s = manager.EXECUTORS[0]
    assert isinstance(k8s, KubernetesExecutorConfig)
    assert k8s.KUBERNETES_DISTRIBUTION == "k8s"
    assert k8s.CONTAINER_CPU_LIMITS == "1"
    assert k8s.BUILDER_VM_CONTAINER_IMAGE is None


def test_kubernetes_bad_values(tmp_path: Path) -> None:
    messages = errors(
        tmp_path,
        manager_with("""\
        EXECUTOR: kubernetes
        CONTAINER_MEMORY_LIMITS: 5 GB
        SERVICE_ACCOUNT_TOKEN: true
    """),
    )
    assert messages == [
        "BUILD_MANAGER[1].EXECUTORS[0].K8S_API_SERVER is required; add e.g. "
        "K8S_API_SERVER: api.openshift.example.com:6443",
        "BUILD_MANAGER[1].EXECUTORS[0].SERVICE_ACCOUNT_TOKEN: '*****' is not text (quote values "
        "that look like something else); write e.g. SERVICE_ACCOUNT_TOKEN: eyJhbGciOi...",
        "BUILD_MANAGER[1].EXECUTORS[0].CONTAINER_MEMORY_LIMITS: '5 GB' is not a Kubernetes "
        "quantity (a number with an optional unit: Ki Mi Gi Ti, k M G T, or m for thousandths "
        "of a CPU); write e.g. CONTAINER_MEMORY_LIMITS: 4096Mi",
    ]


def test_kubernetes_needs_vm_image(tmp_path: Path) -> None:
    [message] = errors(
        tmp_path, manager_with("EXECUTOR: kubernetes\nK8S_API_SERVER: api.example.com:6443")
    )
    assert message.startswith(
        "BUILD_MANAGER[1].EXECUTORS[0].BUILDER_VM_CONTAINER_IMAGE is "
        "required when EXECUTOR is kubernetes"
    )
    assert "kubernetesPodman" in message


# --- ec2 -----------------------------------------------------------------------------------


def test_ec2_defaults(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        manager_with("""\
        EXECUTOR: ec2
        EC2_REGION: us-east-1
        EC2_INSTANCE_TYPE: t3.large
        COREOS_AMI: ami-0123456789abcdef0
        EC2_SECURITY_GROUP_IDS: sg-1
    """),
    ).config.manager
    assert manager is not None
    ec2 = manager.EXECUTORS[0]
    assert isinstance(ec2, EC2ExecutorConfig)
    assert ec2.AWS_ACCESS_KEY is None and ec2.AWS_SECRET_KEY is None
    assert ec2.COREOS_STREAM_URL is None and ec2.EC2_VPC_SUBNET_ID is None
    assert ec2.EC2_SECURITY_GROUP_IDS == ["sg-1"]
    assert ec2.EC2_KEY_NAME is None and ec2.EC2_ENDPOINT_URL is None
    assert ec2.BLOCK_DEVICE_SIZE == 48
    assert ec2.CONTAINER_RUNTIME == "docker"


def test_ec2_bad_values(tmp_path: Path) -> None:
    assert errors(
        tmp_path,
        manager_with("""\
        EXECUTOR: ec2
        EC2_REGION: us-east-1
        BLOCK_DEVICE_SIZE: 48GiB
        AWS_SECRET_KEY: wJalrXUtnFEMI-secret
    """),
    ) == [
        "BUILD_MANAGER[1].EXECUTORS[0].EC2_INSTANCE_TYPE is required; add e.g. "
        "EC2_INSTANCE_TYPE: m5.large",
        "BUILD_MANAGER[1].EXECUTORS[0].BLOCK_DEVICE_SIZE: '48GiB' is not a whole number of GiB; "
        "write e.g. BLOCK_DEVICE_SIZE: 48",
    ]


def test_ec2_cross_checks(tmp_path: Path) -> None:
    base = "EXECUTOR: ec2\nEC2_REGION: us-east-1\nEC2_INSTANCE_TYPE: t3.large\n"
    [message] = errors(tmp_path, manager_with(base))
    assert message.startswith("BUILD_MANAGER[1].EXECUTORS[0].COREOS_AMI is required")
    assert "COREOS_STREAM_URL" in message
    load(tmp_path, manager_with(base + "COREOS_STREAM_URL: http://127.0.0.1:1/stable.json"))
    [message] = errors(
        tmp_path, manager_with(base + "COREOS_AMI: ami-1\nAWS_SECRET_KEY: wJalrXUtnFEMI-secret")
    )
    assert message.startswith("BUILD_MANAGER[1].EXECUTORS[0].AWS_ACCESS_KEY: ")
    assert "wJalrXUtnFEMI" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite://", "'sqlite://' is an in-memory SQLite database"),
        ("sqlite:///:memory:", "'sqlite:///:memory:' is an in-memory SQLite database"),
        ("mysql://quay:s3cret-pw@db/quay", "'mysql://quay:*****@db/quay': 'mysql' is not a "
                                          "supported database"),
        ("not a url at all", "this is not a database URL"),
    ],
)
def test_db_uri_that_cannot_work(tmp_path: Path, value: str, expected: str) -> None:
    [message] = errors(tmp_path, f"DB_URI: '{value}'\n")
    assert message.startswith(f"DB_URI: {expected}")
    assert "sqlite:////absolute/path.db or postgresql://" in message
    assert "s3cret-pw" not in message


def test_db_uri_file_and_postgres_are_taken(tmp_path: Path) -> None:
    for value in (f"sqlite:///{tmp_path}/s.db", "postgresql://u:pw@db.example.com/slipway"):
        assert value == load(tmp_path, f"DB_URI: '{value}'\n").config.DB_URI
