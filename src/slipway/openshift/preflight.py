"""`slipway openshift preflight`: will builds run on the cluster of one kubernetes executor?
Each check uses the executor's own API server, CA and credentials, and a failure says
which `oc` command fixes it (docs/openshift.md, 6.4.2)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable
from typing import TypeVar

from kubernetes_asyncio.client import (
    ApiClient,
    AuthenticationV1Api,
    AuthorizationV1Api,
    CoreV1Api,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.executors.kubernetes.client import (
    api_base_url,
    describe_failure,
    make_api_client,
    redact,
)
from slipway.executors.kubernetes.config import KubernetesExecutorConfig
from slipway.executors.kubernetes.manifests import is_openshift, is_podman_kind
from slipway.openshift.checks import Check, Outcome

T = TypeVar("T")

# (verb, group, resource): what the executor does in BUILDER_NAMESPACE
REQUIRED = (
    ("create", "batch", "jobs"),
    ("list", "batch", "jobs"),
    ("delete", "batch", "jobs"),
    ("create", "", "pods"),
    ("create", "", "secrets"),
)


class _Failed(Exception):
    def __init__(self, cause: BaseException, text: str) -> None:
        self.cause = cause
        self.text = text


class Preflight:
    def __init__(self, config: KubernetesExecutorConfig) -> None:
        self.config = config
        self.ns = str(config.BUILDER_NAMESPACE)
        self.sa = str(config.SERVICE_ACCOUNT_NAME)
        self.timeout = float(config.K8S_API_TIMEOUT)
        self.url = api_base_url(str(config.K8S_API_SERVER))

    async def _call(self, make: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await make
        except Exception as exc:
            text = describe_failure(exc, self.config, self.timeout)
            if text is None:
                raise
            raise _Failed(exc, redact(text, self.config)) from exc

    @property
    def _sa_user(self) -> str:
        return f"system:serviceaccount:{self.ns}:{self.sa}"

    def _token_fix(self) -> str:
        return (
            f"oc create token -n {self.ns} {self.sa} --duration=8760h  (OpenShift < 4.11: "
            f"oc sa get-token -n {self.ns} {self.sa}); put it in SERVICE_ACCOUNT_TOKEN"
        )

    async def run(self) -> list[Check]:
        try:
            client = make_api_client(self.config)
        except ValueError as exc:
            return [Check(Outcome.FAIL, "TLS files", str(exc), "fix the path in config.yaml")]
        try:
            checks = [await self._reachable(client)]
            if checks[0].outcome is Outcome.FAIL:
                return checks
            auth = await self._authenticated(client)
            checks.append(auth)
            if auth.outcome is Outcome.FAIL:
                return checks
            checks.append(await self._namespace(client))
            checks.append(await self._permissions(client))
            if is_openshift(self.config) and not is_podman_kind(self.config):
                checks.append(await self._scc(client))
            checks.append(await self._nodes(client))
            return checks
        finally:
            await client.close()

    async def _reachable(self, client: ApiClient) -> Check:
        title = f"API server {self.url} reachable, TLS certificate verified"
        try:
            info = await self._call(VersionApi(client).get_code())
        except _Failed as failed:
            if isinstance(failed.cause, ApiException):
                # It answered over verified TLS; /version is merely closed to anonymous users.
                return Check(Outcome.OK, title)
            ca_file = self.config.K8S_API_TLS_CA or "/conf/stack/extra_ca_certs/build_cluster.crt"
            if "certificate" in failed.text:
                fix = (
                    "oc get configmap kube-root-ca.crt -n openshift-config -o "
                    f"jsonpath='{{.data.ca\\.crt}}' > {ca_file}  and set K8S_API_TLS_CA: {ca_file}"
                )
            else:
                fix = "oc whoami --show-server  (K8S_API_SERVER is its host:port)"
            return Check(Outcome.FAIL, title, failed.text, fix)
        return Check(Outcome.OK, title, f"Kubernetes {info.git_version}")

    async def _authenticated(self, client: ApiClient) -> Check:
        if self.config.K8S_API_TLS_CERT:
            title = "client certificate accepted"
        else:
            title = "SERVICE_ACCOUNT_TOKEN valid"
            if not self.config.SERVICE_ACCOUNT_TOKEN:
                return Check(
                    Outcome.FAIL, title, "no SERVICE_ACCOUNT_TOKEN in the config", self._token_fix()
                )
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            answer = await self._call(
                AuthenticationV1Api(client).create_self_subject_review(review)  # type: ignore[arg-type]
            )
        except _Failed as failed:
            cause = failed.cause
            if isinstance(cause, ApiException) and cause.status == 401:
                return Check(Outcome.FAIL, title, failed.text, self._token_fix())
            if isinstance(cause, ApiException) and cause.status in (403, 404):
                # API older than 1.28 (or review closed): authenticated, identity unknown.
                return Check(Outcome.OK, title)
            return Check(Outcome.FAIL, title, failed.text, "check the API server's health")
        user = answer.status.user_info.username if answer.status and answer.status.user_info else ""
        return Check(Outcome.OK, title, f"authenticated as {user}" if user else "")

    async def _namespace(self, client: ApiClient) -> Check:
        title = f"namespace {self.ns} exists"
        try:
            await self._call(CoreV1Api(client).read_namespace(self.ns))
        except _Failed as failed:
            cause = failed.cause
            if isinstance(cause, ApiException) and cause.status == 404:
                return Check(Outcome.FAIL, title, failed.text, f"oc new-project {self.ns}")
            if isinstance(cause, ApiException) and cause.status == 403:
                return Check(
                    Outcome.WARN,
                    title,
                    "not visible to these credentials",
                    f"as an administrator: oc get project {self.ns}",
                )
            return Check(Outcome.FAIL, title, failed.text, "check the API server's health")
        return Check(Outcome.OK, title)

    async def _allowed(self, client: ApiClient, attributes: dict[str, str]) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = await self._call(
            AuthorizationV1Api(client).create_self_subject_access_review(review)  # type: ignore[arg-type]
        )
        return bool(answer.status and answer.status.allowed)

    async def _permissions(self, client: ApiClient) -> Check:
        title = f"may create, list and delete Jobs and create Pods and Secrets in {self.ns}"
        fix = f"oc policy add-role-to-user -n {self.ns} edit {self._sa_user}"
        missing = []
        try:
            for verb, group, resource in REQUIRED:
                attrs = {"namespace": self.ns, "verb": verb, "group": group, "resource": resource}
                if not await self._allowed(client, attrs):
                    missing.append(f"{verb} {resource}{'.' + group if group else ''}")
        except _Failed as failed:
            return Check(Outcome.FAIL, title, failed.text, fix)
        if missing:
            return Check(Outcome.FAIL, title, "not allowed: " + ", ".join(missing), fix)
        return Check(Outcome.OK, title)

    async def _scc(self, client: ApiClient) -> Check:
        title = f"may use the SecurityContextConstraints {self.sa} (privileged VM pod)"
        fix = (
            f"slipway openshift manifests --namespace {self.ns} --service-account {self.sa}"
            " | oc apply -f -"
        )
        attrs = {
            "namespace": self.ns,
            "verb": "use",
            "group": "security.openshift.io",
            "resource": "securitycontextconstraints",
            "name": self.sa,
        }
        try:
            allowed = await self._allowed(client, attrs)
        except _Failed as failed:
            return Check(Outcome.FAIL, title, failed.text, fix)
        return (
            Check(Outcome.OK, title) if allowed else Check(Outcome.FAIL, title, "not allowed", fix)
        )

    async def _nodes(self, client: ApiClient) -> Check:
        key = str(self.config.NODE_SELECTOR_LABEL_KEY)
        value = str(self.config.NODE_SELECTOR_LABEL_VALUE or "").strip()
        if not value:
            return Check(Outcome.OK, "node selector", "none (NODE_SELECTOR_LABEL_VALUE is empty)")
        selector = f"{key}={value}"
        title = f"nodes labelled {selector}"
        label_fix = f"oc label node <bare-metal-node> {shlex.quote(selector)}"
        try:
            nodes = await self._call(CoreV1Api(client).list_node(label_selector=selector))
        except _Failed as failed:
            cause = failed.cause
            if isinstance(cause, ApiException) and cause.status == 403:
                # The builder account rightly cannot list nodes: not a failure of the set-up.
                return Check(
                    Outcome.WARN,
                    title,
                    "these credentials may not list nodes",
                    f"as a cluster administrator: oc get nodes -l {shlex.quote(selector)}",
                )
            return Check(Outcome.FAIL, title, failed.text, "check the API server's health")
        names = [n.metadata.name for n in nodes.items or []]
        if not names:
            return Check(
                Outcome.FAIL,
                title,
                "no node has this label: build pods would stay Pending",
                label_fix,
            )
        return Check(Outcome.OK, title, ", ".join(names))


async def preflight(config: KubernetesExecutorConfig) -> list[Check]:
    return await Preflight(config).run()
