"""Pure builders of the Kubernetes objects a build worker runs as: a batch/v1 Job and the
Secret holding what must not be readable from the Job spec. No I/O, so the manifests can be
validated against the OpenAPI schemas and printed."""

from __future__ import annotations

import hashlib
import re
import secrets as _secrets
from collections.abc import Mapping
from typing import Any

from slipway import __version__
from slipway.executors.base import WorkerSpec
from slipway.executors.kubernetes.config import KubernetesExecutorConfig

LABEL_PREFIX = "slipway.io"
MANAGED_BY = "slipway"
LABEL_MANAGER = f"{LABEL_PREFIX}/manager"
LABEL_EXECUTOR = f"{LABEL_PREFIX}/executor"
LABEL_BUILD = f"{LABEL_PREFIX}/build"
LABEL_JOB = f"{LABEL_PREFIX}/job"
CONTAINER_NAME = "builder"
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CA_MOUNT_DIR = "/etc/slipway/worker-ca"
CA_KEY = "ca.crt"

# Environment that carries credentials: it goes through the Secret, never the Job spec
# (anyone allowed to read Jobs/Pods in the namespace would see it there).
SECRET_ENV = ("TOKEN", "USERDATA")
# Manager-local settings a pod cannot use.
_DROP_ENV = ("DOCKER_HOST", "TLS_CERT_PATH")

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(value: str) -> str:
    """`value` if it is a valid label value, else a valid one derived from it. A hash of
    the original keeps two different ids from colliding after cleaning."""
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:54].strip("-_.")
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def _dns_label(value: str, limit: int) -> str:
    cleaned = re.sub(r"[^a-z0-9-]", "-", value.lower())[:limit].strip("-")
    return cleaned or "worker"


def is_openshift(config: KubernetesExecutorConfig) -> bool:
    return config.KUBERNETES_DISTRIBUTION == "openshift"


def is_podman_kind(config: KubernetesExecutorConfig) -> bool:
    return config.EXECUTOR == "kubernetesPodman"


def selector_labels(config: KubernetesExecutorConfig, manager_id: str) -> dict[str, str]:
    """The labels that identify the Jobs of one manager's executor (for listing)."""
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_MANAGER: label_value(manager_id),
        LABEL_EXECUTOR: label_value(config.NAME),
    }


def label_selector(config: KubernetesExecutorConfig, manager_id: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(config, manager_id).items())


def worker_labels(
    config: KubernetesExecutorConfig, spec: WorkerSpec, manager_id: str
) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "slipway-worker",
        "app.kubernetes.io/version": label_value(__version__),
        **selector_labels(config, manager_id),
        LABEL_BUILD: label_value(spec.build_id),
        LABEL_JOB: label_value(spec.job_id),
    }


def worker_annotations(spec: WorkerSpec, manager_id: str) -> dict[str, str]:
    # Labels are cleaned to the label syntax; the exact ids are kept here.
    return {
        f"{LABEL_PREFIX}/build-id": spec.build_id,
        f"{LABEL_PREFIX}/job-id": spec.job_id,
        f"{LABEL_PREFIX}/manager-id": manager_id,
    }


def new_secret_name(spec: WorkerSpec) -> str:
    """A fresh name for the worker's Secret (it must be known before the Job is created,
    because the pod template refers to it)."""
    return f"slipway-{_dns_label(spec.build_id, 36)}-{_secrets.token_hex(4)}"


def _resources(config: KubernetesExecutorConfig) -> dict[str, Any]:
    return {
        "requests": {
            "memory": str(config.CONTAINER_MEMORY_REQUEST),
            "cpu": str(config.CONTAINER_CPU_REQUEST),
        },
        "limits": {
            "memory": str(config.CONTAINER_MEMORY_LIMITS),
            "cpu": str(config.CONTAINER_CPU_LIMITS),
        },
    }


def _secret_env(name: str, key: str, secret_name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def _vm_container(config: KubernetesExecutorConfig, secret_name: str) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": str(config.BUILDER_VM_CONTAINER_IMAGE),
        "imagePullPolicy": str(config.IMAGE_PULL_POLICY),
        # QEMU needs /dev/kvm and the VM's network: a privileged pod (the SCC of docs/openshift.md).
        "securityContext": {"privileged": True},
        "env": [
            _secret_env("USERDATA", "USERDATA", secret_name),
            {"name": "VM_MEMORY", "value": str(config.VM_MEMORY_LIMIT)},
            {"name": "VM_VOLUME_SIZE", "value": str(config.VOLUME_SIZE)},
        ],
        "resources": _resources(config),
    }


def podman_image(config: KubernetesExecutorConfig) -> str:
    return config.BUILDER_CONTAINER_IMAGE  # its default is WORKER_IMAGE:WORKER_TAG


def podman_runtime(config: KubernetesExecutorConfig) -> str:
    # The pod has no docker daemon; podman (or buildah) builds in-process.
    runtime = config.CONTAINER_RUNTIME
    return runtime if runtime in ("podman", "buildah") else "podman"


def _podman_container(
    config: KubernetesExecutorConfig, spec: WorkerSpec, secret_name: str, has_ca: bool
) -> dict[str, Any]:
    env: dict[str, str] = {}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        value = getattr(config, key)
        if value:
            env[key] = value
    env.update({k: v for k, v in spec.environment.items() if k not in SECRET_ENV + _DROP_ENV})
    env.setdefault("SERVER", spec.manager_address)
    env.setdefault("BUILD_UUID", spec.build_id)
    env["CONTAINER_RUNTIME"] = podman_runtime(config)
    # Quay sets the misspelt name; quay-builder reads it. slipway's worker reads both.
    env["BUILDAH_ISOLATION"] = "chroot"
    env["BULDAH_ISOLATION"] = "chroot"
    if has_ca:
        env["TLS_CERT_PATH"] = f"{CA_MOUNT_DIR}/{CA_KEY}"
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": podman_image(config),
        "imagePullPolicy": str(config.IMAGE_PULL_POLICY),
        # privileged only where the operator says rootless podman cannot run (its SCC)
        "securityContext": {"privileged": config.WORKER_PRIVILEGED},
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())]
        + [_secret_env("TOKEN", "TOKEN", secret_name)],
        "resources": _resources(config),
    }
    if has_ca:
        container["volumeMounts"] = [
            {"name": "worker-ca", "mountPath": CA_MOUNT_DIR, "readOnly": True}
        ]
    return container


def job_manifest(
    config: KubernetesExecutorConfig,
    spec: WorkerSpec,
    manager_id: str,
    secret_name: str,
    has_ca: bool = False,
) -> dict[str, Any]:
    """The batch/v1 Job running one worker. `secret_name` is the Secret made by
    `secret_manifest` (TOKEN or USERDATA, and the worker's CA when `has_ca`)."""
    labels = worker_labels(config, spec, manager_id)
    annotations = worker_annotations(spec, manager_id)
    if is_podman_kind(config):
        container = _podman_container(config, spec, secret_name, has_ca)
    else:
        container = _vm_container(config, secret_name)
        has_ca = False  # the VM gets its CAs from the Ignition config
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "dnsPolicy": str(config.DNS_POLICY),
        "containers": [container],
    }
    volumes: list[dict[str, Any]] = []
    if config.IMAGE_PULL_SECRET_NAME:
        pod_spec["imagePullSecrets"] = [{"name": str(config.IMAGE_PULL_SECRET_NAME)}]
    node_value = str(config.NODE_SELECTOR_LABEL_VALUE or "").strip()
    if config.NODE_SELECTOR_LABEL_KEY and node_value:
        pod_spec["nodeSelector"] = {str(config.NODE_SELECTOR_LABEL_KEY): node_value}
    if is_openshift(config):
        # A dedicated service account with no API rights, and nothing of the cluster
        # (token, service links) visible inside the build pod.
        pod_spec["serviceAccountName"] = str(config.SERVICE_ACCOUNT_NAME)
        pod_spec["automountServiceAccountToken"] = False
        pod_spec["enableServiceLinks"] = False
    else:
        # Mask the namespace's default service-account token (Quay's approach).
        volumes.append({"name": "secrets-mask", "emptyDir": {"medium": "Memory"}})
        container.setdefault("volumeMounts", []).append(
            {"name": "secrets-mask", "mountPath": SA_TOKEN_DIR}
        )
    if has_ca:
        volumes.append(
            {
                "name": "worker-ca",
                "secret": {"secretName": secret_name, "items": [{"key": CA_KEY, "path": CA_KEY}]},
            }
        )
    if volumes:
        pod_spec["volumes"] = volumes

    job_spec: dict[str, Any] = {
        "activeDeadlineSeconds": int(config.MAXIMUM_JOB_TIME),
        "backoffLimit": 0,
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
    }
    if not config.DEBUG:
        job_spec["ttlSecondsAfterFinished"] = int(config.RETENTION_AFTER_FINISHED)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"slipway-{_dns_label(spec.build_id, 40)}-",
            "namespace": str(config.BUILDER_NAMESPACE),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": job_spec,
    }


def secret_manifest(
    config: KubernetesExecutorConfig,
    spec: WorkerSpec,
    manager_id: str,
    name: str,
    data: Mapping[str, str],
    owner: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Secret with the worker's credentials. `owner` = {name, uid} of the Job: the
    garbage collector then deletes the Secret with the Job."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": str(config.BUILDER_NAMESPACE),
        "labels": worker_labels(config, spec, manager_id),
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": owner["name"],
                "uid": owner["uid"],
                "blockOwnerDeletion": False,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": dict(data),
    }
