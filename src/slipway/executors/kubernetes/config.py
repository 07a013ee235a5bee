"""The config of the `kubernetes` and `kubernetesPodman` executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import SecretStr, field_validator, model_validator

from slipway import __version__
from slipway.config_fields import HostPort, Quantity, field, problem
from slipway.executors.config_base import ExecutorConfigBase
from slipway.images import WORKER_IMAGE as DEFAULT_WORKER_IMAGE


class KubernetesExecutorConfig(ExecutorConfigBase):
    """`kubernetes` (QEMU VM in a privileged pod) and `kubernetesPodman` (worker image
    directly in an unprivileged pod)."""

    IMPLEMENTATION: ClassVar[str] = "slipway.executors.kubernetes.executor:KubernetesExecutor"

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
    WORKER_PRIVILEGED: bool = field(
        False,
        example=True,
        description="slipway: run the kubernetesPodman pod privileged, for clusters where "
        "rootless podman cannot set up its user namespace",
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
