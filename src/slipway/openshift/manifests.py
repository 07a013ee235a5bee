"""The OpenShift objects a build namespace needs (docs/openshift.md, 6.4.2), as data and
as the multi-document YAML `oc apply -f -` takes.

Quay's guide does it with `oc new-project`, `oc create sa`, `oc policy add-role-to-user edit`
and then applies a SecurityContextConstraints, Role and RoleBinding. The same objects here:
a Namespace (what `oc new-project` leaves behind; a Project cannot be applied, only
requested), the ServiceAccount, the `edit` RoleBinding, and the SCC set-up."""

from __future__ import annotations

from typing import Any

import yaml

EDIT_CLUSTER_ROLE = "edit"


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "annotations": {
                "openshift.io/display-name": "slipway / Quay builds",
                "openshift.io/description": "Build pods of the Quay-compatible build manager",
            },
        },
    }


def service_account(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns},
    }


def _sa_subject(name: str, ns: str) -> dict[str, str]:
    # RBAC requires the namespace of a ServiceAccount subject (Quay's guide leaves it out).
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


def edit_role_binding(sa: str, ns: str) -> dict[str, Any]:
    """`oc policy add-role-to-user -n NS edit system:serviceaccount:NS:SA`: the rights to
    create, list and delete Jobs, Pods and Secrets in the namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{sa}-edit", "namespace": ns},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": EDIT_CLUSTER_ROLE,
        },
        "subjects": [_sa_subject(sa, ns)],
    }


def security_context_constraints(name: str) -> dict[str, Any]:
    """The SCC of Quay's guide (docs/openshift.md, 6.4.2): the QEMU pod needs a privileged
    container. Every field the OpenShift API requires is present (the nullable ones as
    null, as in the guide)."""
    run_as_any = {"type": "RunAsAny"}
    return {
        "apiVersion": "security.openshift.io/v1",
        "kind": "SecurityContextConstraints",
        "metadata": {"name": name},
        "priority": None,
        "readOnlyRootFilesystem": False,
        "requiredDropCapabilities": None,
        "runAsUser": dict(run_as_any),
        "seLinuxContext": dict(run_as_any),
        "seccompProfiles": ["*"],
        "supplementalGroups": dict(run_as_any),
        "volumes": ["*"],
        "allowHostDirVolumePlugin": True,
        "allowHostIPC": True,
        "allowHostNetwork": True,
        "allowHostPID": True,
        "allowHostPorts": True,
        "allowPrivilegeEscalation": True,
        "allowPrivilegedContainer": True,
        "allowedCapabilities": ["*"],
        "allowedUnsafeSysctls": ["*"],
        "defaultAddCapabilities": None,
        "fsGroup": dict(run_as_any),
    }


def scc_role(scc: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{scc}-scc", "namespace": ns},
        "rules": [
            {
                "apiGroups": ["security.openshift.io"],
                "resourceNames": [scc],
                "resources": ["securitycontextconstraints"],
                "verbs": ["use"],
            }
        ],
    }


def scc_role_binding(scc: str, sa: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{scc}-scc", "namespace": ns},
        "subjects": [_sa_subject(sa, ns)],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{scc}-scc"},
    }


def builder_manifests(
    ns: str = "builder", sa: str = "quay-builder", scc: str | None = None
) -> list[dict[str, Any]]:
    """Everything of docs/openshift.md's 6.4.2, in the order `oc apply` needs (namespace
    first). The SCC is cluster-wide: its name defaults to the service account's, as in
    Quay's guide."""
    scc = scc or sa
    return [
        namespace(ns),
        service_account(sa, ns),
        edit_role_binding(sa, ns),
        security_context_constraints(scc),
        scc_role(scc, ns),
        scc_role_binding(scc, sa, ns),
    ]


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)
