"""`kubernetes` and `kubernetesPodman` executors: one batch/v1 Job per build attempt.

`kubernetes`: a privileged pod runs BUILDER_VM_CONTAINER_IMAGE, QEMU booting a CoreOS VM
from the Ignition config (env USERDATA). `kubernetesPodman`: the worker image runs directly
in an unprivileged pod and builds with podman (chroot isolation).

Credentials (the registration token, the Ignition config that embeds it) go into a Secret
created next to the Job, owned by it (so the garbage collector removes it with the Job),
not into the Job spec: reading Jobs and Pods is a much wider right than reading Secrets
(`view` has the former, not the latter), and Job specs end up in events and `oc describe`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from kubernetes_asyncio.client import ApiClient, BatchV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.executors.ca_bundle import CaFile, configured_ca_files, read_ca_certs
from slipway.executors.kubernetes import manifests
from slipway.executors.kubernetes.client import describe_failure, make_api_client, redact
from slipway.executors.kubernetes.config import KubernetesExecutorConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

_FINISHED = ("Complete", "Failed")


def job_finished(job: dict[str, Any]) -> bool:
    """A Job is over once it has a true Complete/Failed condition or is being deleted."""
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return True
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in _FINISHED and c.get("status") == "True" for c in conditions)


def worker_ca_pem(config: KubernetesExecutorConfig, spec: WorkerSpec) -> str | None:
    """The CA bundle a podman worker verifies the manager with: CA_CERT (+ EXTRA_CA_CERTS),
    else the file the manager named in TLS_CERT_PATH."""
    files = configured_ca_files(config)
    manager_ca = spec.environment.get("TLS_CERT_PATH")
    if not files and manager_ca:
        fix = (
            "set CA_CERT in the executor config to the CA file that signs the manager's "
            "certificate"
        )
        files = [CaFile(manager_ca, "the manager's TLS_CERT_PATH", fix)]
    return "".join(read_ca_certs(files)) or None


async def _userdata(config: KubernetesExecutorConfig, spec: WorkerSpec) -> str:
    from slipway.executors.bootstrap import ignition_json

    result: Any = await asyncio.to_thread(ignition_json, config, spec)
    if inspect.isawaitable(result):
        result = await result
    return str(result)


class KubernetesExecutor(Executor[KubernetesExecutorConfig]):
    """Both kinds; `config.EXECUTOR` chooses the pod (see the module docstring)."""

    def __init__(self, config: KubernetesExecutorConfig, manager_id: str) -> None:
        super().__init__(config, manager_id)
        self._client: ApiClient | None = None

    @property
    def namespace(self) -> str:
        return self.config.BUILDER_NAMESPACE

    @property
    def timeout(self) -> float:
        return float(self.config.K8S_API_TIMEOUT)

    def _api(self) -> ApiClient:
        if self._client is None:
            try:
                self._client = make_api_client(self.config)
            except ValueError as exc:
                raise ExecutorError(f"executor {self.name}: {exc}") from None
        return self._client

    async def _call(self, action: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run one API call with the per-call timeout; failures become ExecutorError with
        the API's own words and never a credential."""
        try:
            async with asyncio.timeout(self.timeout):
                return await make()
        except Exception as exc:
            described = describe_failure(exc, self.config, self.timeout)
            if described is None:
                raise
            message = redact(f"executor {self.name}: {action}: {described}", self.config)
            raise ExecutorError(message) from exc

    async def start_worker(self, spec: WorkerSpec) -> str:
        podman = manifests.is_podman_kind(self.config)
        secret_data: dict[str, str] = {}
        if podman:
            secret_data["TOKEN"] = spec.registration_token
            ca = worker_ca_pem(self.config, spec)
            if ca:
                secret_data[manifests.CA_KEY] = ca
        else:
            secret_data["USERDATA"] = await _userdata(self.config, spec)
        secret_name = manifests.new_secret_name(spec)
        job = manifests.job_manifest(
            self.config, spec, self.manager_id, secret_name, has_ca=manifests.CA_KEY in secret_data
        )
        api = self._api()
        batch, core = BatchV1Api(api), CoreV1Api(api)
        ns = self.namespace
        created = await self._call(
            f"creating a Job in namespace {ns!r}",
            lambda: batch.create_namespaced_job(ns, cast(Any, job)),
        )
        name = str(created.metadata.name)
        owner = {"name": name, "uid": str(created.metadata.uid)}
        secret = manifests.secret_manifest(
            self.config, spec, self.manager_id, secret_name, secret_data, owner
        )
        try:
            await self._call(
                f"creating Secret {secret_name!r} for Job {name!r} in namespace {ns!r}",
                lambda: core.create_namespaced_secret(ns, cast(Any, secret)),
            )
        except ExecutorError:
            # Without its Secret the pod can never start: take the Job back.
            try:
                await self.stop_worker(name)
            except ExecutorError as exc:
                log.warning("could not delete Job %s after a failed start: %s", name, exc)
            raise
        log.info("started worker Job %s/%s for build %s", ns, name, spec.build_id)
        return name

    async def stop_worker(self, worker_id: str) -> None:
        batch = BatchV1Api(self._api())
        ns = self.namespace
        try:
            # Background: the Job goes now; the garbage collector removes its pods and
            # its Secret (owner references).
            await self._call(
                f"deleting Job {worker_id!r} in namespace {ns!r}",
                lambda: batch.delete_namespaced_job(worker_id, ns, propagation_policy="Background"),
            )
        except ExecutorError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                return  # already gone
            raise

    async def running_count(self) -> int:
        api = self._api()
        batch = BatchV1Api(api)
        ns = self.namespace
        selector = manifests.label_selector(self.config, self.manager_id)
        count = 0
        token: str | None = None
        while True:
            page: dict[str, Any] = {"_continue": token} if token else {}
            response = await self._call(
                f"listing Jobs in namespace {ns!r}",
                functools.partial(
                    batch.list_namespaced_job,
                    ns,
                    label_selector=selector,
                    limit=500,
                    **page,
                ),
            )
            body = api.sanitize_for_serialization(response)
            count += sum(1 for job in body.get("items") or [] if not job_finished(job))
            token = (body.get("metadata") or {}).get("continue") or None
            if not token:
                return count

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
