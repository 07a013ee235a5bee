"""Executor configs: one entry of BUILD_MANAGER[1].EXECUTORS (spec/config.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    SecretStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slipway import __version__
from slipway.config.common import HostPort, Quantity, field, problem
from slipway.images import WORKER_IMAGE as DEFAULT_WORKER_IMAGE

ContainerRuntime = Literal["docker", "podman", "buildah"]

# EXECUTOR value -> the model that validates it (Quay's `popen` is slipway's `local`).
EXECUTOR_KINDS = ("local", "popen", "kubernetes", "kubernetesPodman", "ec2")
KINDS_TEXT = "local (or Quay's popen), kubernetes, kubernetesPodman, ec2"


class ExecutorConfigBase(BaseModel):
    """Keys every executor accepts ("All executors" in spec/config.md)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    EXECUTOR: str
    NAME: str = field(
        "",
        example="kubernetes-primary",
        description="unique name of this executor; default: the EXECUTOR value",
    )
    SETUP_TIME: int = field(
        500, example=500, unit="seconds", ge=1, description="time a started worker has to register"
    )
    MINIMUM_RETRY_THRESHOLD: int = field(
        0,
        example=1,
        ge=0,
        description="use this executor only while retries remaining >= this value; 0: no limit",
    )
    NAMESPACE_WHITELIST: list[str] | None = field(
        None, example=["team-a", "team-b"], description="only these namespaces may use it"
    )
    STAGED_ROLLOUT: float | None = field(
        None,
        example=0.25,
        ge=0.0,
        le=1.0,
        description="fraction 0..1 of namespaces (by sha256 of the name) that may use it",
    )
    CONTAINER_RUNTIME: ContainerRuntime = field(
        "docker", example="podman", description="what the worker builds with"
    )
    WORKER_IMAGE: str = field(
        DEFAULT_WORKER_IMAGE,
        example=DEFAULT_WORKER_IMAGE,
        description="the worker container image (kubernetes, ec2); default: slipway's own",
    )
    WORKER_TAG: str = field(__version__, example=__version__, description="its tag")
    QUAY_USERNAME: str | None = field(
        None, example="robot+builder", description="user to pull WORKER_IMAGE"
    )
    QUAY_PASSWORD: SecretStr | None = field(
        None, example="robot-token", description="password to pull WORKER_IMAGE"
    )
    SSH_AUTHORIZED_KEYS: list[str] = field(
        default_factory=list,
        example=["ssh-ed25519 AAAA... admin@example.com"],
        description="public keys put into the Ignition config",
    )
    CA_CERT: Path | None = field(
        None,
        example="/conf/stack/ssl.cert",
        description="CA the worker trusts; default: ssl.cert next to the config file",
    )
    EXTRA_CA_CERTS: list[Path] = field(
        default_factory=list,
        example=["/conf/stack/extra_ca_certs/ca.crt"],
        description="more CAs the worker trusts",
    )
    HTTP_PROXY: str | None = field(None, example="http://proxy.example.com:3128")
    HTTPS_PROXY: str | None = field(None, example="http://proxy.example.com:3128")
    NO_PROXY: str | None = field(None, example="localhost,.cluster.local")
    MAX_LIFETIME_S: int = field(
        10800,
        example=10800,
        unit="seconds",
        ge=1,
        description="VM/instance lifetime before it powers off",
    )
    DEBUG: bool = field(False, example=True, description="keep workers after the build")
    LAYER_CACHE: bool = field(
        False,
        example=True,
        description="slipway: podman keeps each step's layers on the worker's host and "
        "later builds reuse them (a build's --no-cache skips them); for the local executor "
        "or long-lived hosts: a new Pod or instance starts with an empty cache",
    )

    @field_validator("MINIMUM_RETRY_THRESHOLD", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        # Quay's example writes `MINIMUM_RETRY_THRESHOLD:` (YAML null): the default, 0.
        return 0 if value is None else value

    @field_validator("NAMESPACE_WHITELIST", "SSH_AUTHORIZED_KEYS", "EXTRA_CA_CERTS", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fill_defaults(self, info: ValidationInfo) -> ExecutorConfigBase:
        if not self.NAME:
            self.NAME = self.EXECUTOR
        if self.CA_CERT is None and info.context and info.context.get("config_dir"):
            candidate = Path(info.context["config_dir"]) / "ssl.cert"
            if candidate.is_file():
                self.CA_CERT = candidate
        return self


def _detect_runtime() -> ContainerRuntime:
    found: list[ContainerRuntime] = ["podman", "buildah", "docker"]
    for runtime in found:
        if shutil.which(runtime):
            return runtime
    return "podman"


class LocalExecutorConfig(ExecutorConfigBase):
    """`local` (Quay's `popen`): the worker runs as a child process of the manager."""

    EXECUTOR: Literal["local", "popen"]
    CONTAINER_RUNTIME: ContainerRuntime = field(
        default_factory=_detect_runtime,
        example="podman",
        description="default: the first of podman, buildah, docker found on PATH",
    )
    BUILDER_BINARY_LOCATION: str | None = field(
        None,
        example="/usr/local/bin/quay-builder",
        description="command to run instead of `slipway worker`",
    )


class KubernetesExecutorConfig(ExecutorConfigBase):
    """`kubernetes` (QEMU VM in a privileged pod) and `kubernetesPodman` (worker image
    directly in an unprivileged pod)."""

    EXECUTOR: Literal["kubernetes", "kubernetesPodman"]
    BUILDER_NAMESPACE: str = field("builder", example="builder")
    K8S_API_SERVER: HostPort = field(
        example="api.openshift.example.com:6443", description="host:port of the API server"
    )
    K8S_API_TLS_CA: Path | None = field(None, example="/conf/stack/extra_ca_certs/build.crt")
    SERVICE_ACCOUNT_NAME: str = field("quay-builder-sa", example="quay-builder")
    SERVICE_ACCOUNT_TOKEN: SecretStr | None = field(None, example="eyJhbGciOi...")
    K8S_API_TLS_CERT: Path | None = field(None, example="/conf/stack/k8s-client.crt")
    K8S_API_TLS_KEY: Path | None = field(None, example="/conf/stack/k8s-client.key")
    KUBERNETES_DISTRIBUTION: Literal["openshift", "k8s"] = field("k8s", example="openshift")
    CONTAINER_MEMORY_REQUEST: Quantity = field("3968Mi", example="3968Mi")
    CONTAINER_MEMORY_LIMITS: Quantity = field("5120Mi", example="5120Mi")
    CONTAINER_CPU_REQUEST: Quantity = field("500m", example="500m")
    CONTAINER_CPU_LIMITS: Quantity = field("1000m", example="1000m")
    NODE_SELECTOR_LABEL_KEY: str = field(
        "beta.kubernetes.io/instance-type", example="node-role.kubernetes.io/builder"
    )
    NODE_SELECTOR_LABEL_VALUE: str = field("", example="n1-standard-4")
    VOLUME_SIZE: Quantity = field("32G", example="32G", description="VM disk size")
    VM_MEMORY_LIMIT: Quantity = field("4G", example="4G", description="VM memory")
    BUILDER_VM_CONTAINER_IMAGE: str | None = field(
        None,
        example="registry.redhat.io/quay/quay-builder-qemu-rhcos:v3.4.0",
        description="image holding QEMU and the VM; required for EXECUTOR kubernetes",
    )
    BUILDER_CONTAINER_IMAGE: str = field(
        "",
        example=f"{DEFAULT_WORKER_IMAGE}:{__version__}",
        description="image for kubernetesPodman; default WORKER_IMAGE:WORKER_TAG",
    )
    IMAGE_PULL_SECRET_NAME: str = field("builder", example="builder")
    IMAGE_PULL_POLICY: Literal["Always", "IfNotPresent", "Never"] = field(
        "Always", example="IfNotPresent"
    )
    MAXIMUM_JOB_TIME: int = field(7200, example=7200, unit="seconds", ge=1)
    RETENTION_AFTER_FINISHED: int = field(120, example=120, unit="seconds", ge=0)
    DNS_POLICY: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] = field(
        "Default", example="ClusterFirst"
    )
    K8S_API_TIMEOUT: int = field(20, example=20, unit="seconds", ge=1)

    @field_validator("KUBERNETES_DISTRIBUTION", mode="before")
    @classmethod
    def _basic_is_k8s(cls, value: Any) -> Any:
        return "k8s" if value == "basic" else value

    @model_validator(mode="after")
    def _check_kind(self) -> KubernetesExecutorConfig:
        if self.EXECUTOR == "kubernetes" and not self.BUILDER_VM_CONTAINER_IMAGE:
            raise problem(
                "is required when EXECUTOR is kubernetes (the image holding QEMU and the "
                "CoreOS VM); add e.g. BUILDER_VM_CONTAINER_IMAGE: "
                "registry.redhat.io/quay/quay-builder-qemu-rhcos:v3.4.0, or use "
                "EXECUTOR: kubernetesPodman to run the worker image directly",
                key="BUILDER_VM_CONTAINER_IMAGE",
            )
        if (self.K8S_API_TLS_CERT is None) != (self.K8S_API_TLS_KEY is None):
            raise problem(
                "K8S_API_TLS_CERT and K8S_API_TLS_KEY go together; give both "
                "(client certificate and its key) or neither",
                key="K8S_API_TLS_KEY" if self.K8S_API_TLS_KEY is None else "K8S_API_TLS_CERT",
            )
        if not self.BUILDER_CONTAINER_IMAGE:
            self.BUILDER_CONTAINER_IMAGE = f"{self.WORKER_IMAGE}:{self.WORKER_TAG}"
        return self


class EC2ExecutorConfig(ExecutorConfigBase):
    """`ec2`: an instance boots CoreOS with the Ignition config as user data."""

    EXECUTOR: Literal["ec2"]
    EC2_REGION: str = field(example="us-east-1")
    EC2_INSTANCE_TYPE: str = field(example="m5.large")
    AWS_ACCESS_KEY: SecretStr | None = field(None, example="AKIA...")
    AWS_SECRET_KEY: SecretStr | None = field(None, example="wJalr...")
    COREOS_AMI: str | None = field(None, example="ami-0123456789abcdef0")
    COREOS_STREAM_URL: str | None = field(
        None,
        example="http://127.0.0.1:8000/stable.json",
        description="CoreOS stream metadata to look COREOS_AMI up from",
    )
    EC2_VPC_SUBNET_ID: str | None = field(None, example="subnet-0123456789abcdef0")
    EC2_SECURITY_GROUP_IDS: list[str] = field(
        default_factory=list, example=["sg-0123456789abcdef0"]
    )
    EC2_KEY_NAME: str | None = field(None, example="builder-key")
    BLOCK_DEVICE_SIZE: int = field(48, example=48, unit="GiB", ge=1)
    EC2_ENDPOINT_URL: str | None = field(
        None, example="http://127.0.0.1:5000", description="for EC2-compatible clouds and tests"
    )

    @field_validator("EC2_SECURITY_GROUP_IDS", mode="before")
    @classmethod
    def _one_group(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_ami(self) -> EC2ExecutorConfig:
        if not self.COREOS_AMI and not self.COREOS_STREAM_URL:
            raise problem(
                "is required (there is no stream lookup without internet); add e.g. "
                "COREOS_AMI: ami-0123456789abcdef0, or give COREOS_STREAM_URL",
                key="COREOS_AMI",
            )
        if (self.AWS_ACCESS_KEY is None) != (self.AWS_SECRET_KEY is None):
            missing = "AWS_SECRET_KEY" if self.AWS_SECRET_KEY is None else "AWS_ACCESS_KEY"
            raise problem(
                "AWS_ACCESS_KEY and AWS_SECRET_KEY go together; give both, or "
                "neither to use the default AWS credential chain",
                key=missing,
            )
        return self


def _executor_tag(value: Any) -> str | None:
    kind = value.get("EXECUTOR") if isinstance(value, dict) else getattr(value, "EXECUTOR", None)
    return EXECUTOR_TAGS.get(kind) if isinstance(kind, str) else None


# Tags appear in pydantic error locations; the error translator strips them.
EXECUTOR_TAGS = {
    "local": "executor:local",
    "popen": "executor:local",
    "kubernetes": "executor:kubernetes",
    "kubernetesPodman": "executor:kubernetes",
    "ec2": "executor:ec2",
}

ExecutorConfig = Annotated[
    Annotated[LocalExecutorConfig, Tag("executor:local")]
    | Annotated[KubernetesExecutorConfig, Tag("executor:kubernetes")]
    | Annotated[EC2ExecutorConfig, Tag("executor:ec2")],
    Discriminator(_executor_tag),
]

MODEL_FOR_KIND: dict[str, type[ExecutorConfigBase]] = {
    "local": LocalExecutorConfig,
    "popen": LocalExecutorConfig,
    "kubernetes": KubernetesExecutorConfig,
    "kubernetesPodman": KubernetesExecutorConfig,
    "ec2": EC2ExecutorConfig,
}
