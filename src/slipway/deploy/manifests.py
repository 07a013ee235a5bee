"""The objects that run slipway itself on Kubernetes or OpenShift, as data (printed by
`slipway deploy manifests`).

In the order of Quay's guide (docs/openshift.md): the builder namespace's objects (6.4.2, from
`slipway.openshift.manifests`), then slipway's namespace, its service account and the Role
it needs in the builder namespace, then the managers: a Deployment of N replicas, one
Service, one HTTP address and one gRPC address (OpenShift Routes or Kubernetes Ingresses),
a PodDisruptionBudget, and the shared volume uploaded build contexts live on. The config
(config.yaml and the files it names) is a Secret the operator creates from their own
files, so no credential passes through these manifests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from slipway import __version__, images
from slipway.openshift.manifests import (
    builder_manifests,
    edit_role_binding,
    namespace,
    service_account,
)

Platform = Literal["openshift", "kubernetes"]
GrpcTls = Literal["passthrough", "reencrypt"]

MANAGER_IMAGE = images.MANAGER_IMAGE_REFERENCE
APP = "slipway"
CONFIG_DIR = "/conf/stack"
DATA_DIR = "/var/lib/slipway"
# the image's user; on OpenShift the restricted SCC picks the uid and the fsGroup itself
IMAGE_UID = 1001


@dataclass(frozen=True)
class DeployOptions:
    namespace: str = "slipway"
    replicas: int = 1
    image: str = MANAGER_IMAGE
    platform: Platform = "openshift"
    http_host: str = ""
    grpc_host: str = ""
    http_port: int = 8700
    grpc_port: int = 50051
    grpc_tls: GrpcTls = "passthrough"
    # reencrypt: the CA the router verifies the pods' gRPC certificate with (PEM)
    grpc_destination_ca: str = ""
    config_secret: str = "slipway-config"
    # Kubernetes Ingress: the class, and the Secret with the TLS certificate of both hosts
    ingress_class: str = "nginx"
    tls_secret: str = ""
    data_size: str = "10Gi"
    storage_class: str = ""
    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    builder_namespace: str = "builder"
    builder_service_account: str = "quay-builder"
    scc: str = ""


def _labels(component: str = "manager") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/instance": APP,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/managed-by": "slipway-deploy",
    }


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "manager"}


def _meta(name: str, opts: DeployOptions, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": opts.namespace, "labels": _labels(), **extra}


def manager_namespace(opts: DeployOptions) -> dict[str, Any]:
    document = namespace(opts.namespace)
    document["metadata"]["annotations"] = {
        "openshift.io/display-name": "slipway",
        "openshift.io/description": "slipway build managers (HTTP API and workers' gRPC)",
    }
    return document


def manager_service_account(opts: DeployOptions) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(APP, opts)}


def service_account_token(opts: DeployOptions) -> dict[str, Any]:
    """A long-lived token of the manager's service account (the cluster fills it in): the
    config's SERVICE_ACCOUNT_TOKEN, as Quay's guide (6.4.2) copies the builder account's."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": _meta(
            f"{APP}-token", opts, annotations={"kubernetes.io/service-account.name": APP}
        ),
    }


def manager_role(opts: DeployOptions) -> dict[str, Any]:
    """What the kubernetes executors do in the builder namespace (and what
    `slipway openshift preflight` checks), nothing more."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": f"{APP}-manager",
            "namespace": opts.builder_namespace,
            "labels": _labels(),
        },
        "rules": [
            {
                "apiGroups": ["batch"],
                "resources": ["jobs"],
                "verbs": ["create", "get", "list", "watch", "delete"],
            },
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "verbs": ["create", "get", "list", "watch"],
            },
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["create", "get", "delete"],
            },
        ],
    }


def manager_role_binding(opts: DeployOptions) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": f"{APP}-manager",
            "namespace": opts.builder_namespace,
            "labels": _labels(),
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{APP}-manager",
        },
        "subjects": [{"kind": "ServiceAccount", "name": APP, "namespace": opts.namespace}],
    }


def data_claim(opts: DeployOptions) -> dict[str, Any]:
    """DATA_DIR: uploaded contexts are served to workers by whichever replica the Service
    picks, so with several replicas every one must see them (ReadWriteMany)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany" if opts.replicas > 1 else "ReadWriteOnce"],
        "resources": {"requests": {"storage": opts.data_size}},
    }
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(f"{APP}-data", opts),
        "spec": spec,
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def deployment(opts: DeployOptions) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": APP,
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--config", f"{CONFIG_DIR}/config.yaml"],
        "ports": [
            {"name": "http", "containerPort": opts.http_port, "protocol": "TCP"},
            {"name": "grpc", "containerPort": opts.grpc_port, "protocol": "TCP"},
        ],
        # database migrations run before the API answers: up to a minute to start
        "startupProbe": _probe("/healthz", 2, 30),
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 2),
        "resources": {
            "requests": {"cpu": opts.cpu_request, "memory": opts.memory_request},
            "limits": {"cpu": opts.cpu_limit, "memory": opts.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if opts.platform == "kubernetes":
        pod_security["fsGroup"] = IMAGE_UID
    pod_spec: dict[str, Any] = {
        "serviceAccountName": APP,
        # SIGTERM stops this manager's workers and puts its builds back in the queue
        "terminationGracePeriodSeconds": 60,
        "securityContext": pod_security,
        "containers": [container],
        "volumes": [
            {"name": "config", "secret": {"secretName": opts.config_secret}},
            {"name": "data", "persistentVolumeClaim": {"claimName": f"{APP}-data"}},
            {"name": "tmp", "emptyDir": {}},
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector()},
            }
        ],
    }
    # one replica on a ReadWriteOnce volume: the old pod must let go of it first
    strategy: dict[str, Any] = (
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        if opts.replicas > 1
        else {"type": "Recreate"}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(APP, opts),
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": _selector()},
            "strategy": strategy,
            "template": {"metadata": {"labels": _labels()}, "spec": pod_spec},
        },
    }


def service(opts: DeployOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(APP, opts),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(),
            "ports": [
                {"name": "http", "port": opts.http_port, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "grpc",
                    "port": opts.grpc_port,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                },
            ],
        },
    }


def disruption_budget(opts: DeployOptions) -> dict[str, Any]:
    """One manager down at a time. maxUnavailable rather than minAvailable: a single
    replica can still be evicted (its builds go back to the queue), so node drains never
    hang on slipway."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(APP, opts),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector()}},
    }


def http_route(opts: DeployOptions) -> dict[str, Any]:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": _meta(APP, opts),
        "spec": {
            "host": opts.http_host,
            "to": {"kind": "Service", "name": APP, "weight": 100},
            "port": {"targetPort": "http"},
            "tls": {"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"},
            "wildcardPolicy": "None",
        },
    }


def grpc_route(opts: DeployOptions) -> dict[str, Any]:
    """gRPC needs HTTP/2 end to end: the router either passes the TLS connection through
    to the pod, or terminates and re-encrypts it (HTTP/2 kept on both legs)."""
    tls: dict[str, Any] = {"termination": opts.grpc_tls, "insecureEdgeTerminationPolicy": "None"}
    if opts.grpc_tls == "reencrypt" and opts.grpc_destination_ca:
        tls["destinationCACertificate"] = opts.grpc_destination_ca
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": _meta(f"{APP}-grpc", opts),
        "spec": {
            "host": opts.grpc_host,
            "to": {"kind": "Service", "name": APP, "weight": 100},
            "port": {"targetPort": "grpc"},
            "tls": tls,
            "wildcardPolicy": "None",
        },
    }


def _ingress(
    opts: DeployOptions, name: str, host: str, port: str, annotations: dict[str, str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ingressClassName": opts.ingress_class,
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": APP, "port": {"name": port}}},
                        }
                    ]
                },
            }
        ],
    }
    if opts.tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": opts.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(name, opts, annotations=annotations),
        "spec": spec,
    }


def http_ingress(opts: DeployOptions) -> dict[str, Any]:
    return _ingress(opts, APP, opts.http_host, "http", {})


def grpc_ingress(opts: DeployOptions) -> dict[str, Any]:
    """ingress-nginx speaks HTTP/2 to the backend only when told it is gRPC (GRPCS: the
    pod's listener has TLS)."""
    return _ingress(
        opts,
        f"{APP}-grpc",
        opts.grpc_host,
        "grpc",
        {"nginx.ingress.kubernetes.io/backend-protocol": "GRPCS"},
    )


def deploy_manifests(opts: DeployOptions) -> list[dict[str, Any]]:
    """Every object, in the order `oc apply -f -` needs them (namespaces first)."""
    ns, sa = opts.builder_namespace, opts.builder_service_account
    if opts.platform == "openshift":
        documents = builder_manifests(ns, sa, opts.scc or None)
    else:
        # SecurityContextConstraints (and the Role to use one) exist on OpenShift only
        documents = [namespace(ns), service_account(sa, ns), edit_role_binding(sa, ns)]
    if opts.namespace != ns:
        documents.append(manager_namespace(opts))
    documents += [
        manager_service_account(opts),
        service_account_token(opts),
        manager_role(opts),
        manager_role_binding(opts),
        data_claim(opts),
        deployment(opts),
        service(opts),
        disruption_budget(opts),
    ]
    if opts.platform == "openshift":
        documents += [http_route(opts), grpc_route(opts)]
    else:
        documents += [http_ingress(opts), grpc_ingress(opts)]
    return documents
