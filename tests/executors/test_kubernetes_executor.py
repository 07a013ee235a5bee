"""KubernetesExecutor against the HTTPS Kubernetes API double (tests/support/k8s_api.py)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import trustme
from support.k8s_api import K8sApiDouble
from support.ports import free_port

from slipway.config.executors import KubernetesExecutorConfig
from slipway.config.loader import load_config
from slipway.executors.base import ExecutorError, WorkerSpec
from slipway.executors.bootstrap import files_by_path
from slipway.executors.kubernetes import manifests as k8s_manifests
from slipway.executors.kubernetes.executor import KubernetesExecutor

DATA = Path(__file__).parents[1] / "data" / "k8s"
REG_TOKEN = "registration-jwt-eyJhbGciOiJSUzI1NiJ9.secret-part"
QUAY_PASSWORD = "quay-pull-password-77"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[K8sApiDouble]:
    double = K8sApiDouble(tmp_path / "k8s", namespaces=("builder",)).start()
    yield double
    double.stop()


def make_config(api: K8sApiDouble, **overrides: Any) -> KubernetesExecutorConfig:
    values: dict[str, Any] = {
        "EXECUTOR": "kubernetes",
        "K8S_API_SERVER": api.server,
        "K8S_API_TLS_CA": str(api.ca_path),
        "SERVICE_ACCOUNT_TOKEN": api.token,
        "BUILDER_VM_CONTAINER_IMAGE": "registry.example.com/qemu-coreos:v1",
        "QUAY_USERNAME": "puller",
        "QUAY_PASSWORD": QUAY_PASSWORD,
        "K8S_API_TIMEOUT": 5,
    }
    values.update(overrides)
    return KubernetesExecutorConfig.model_validate(
        {k: v for k, v in values.items() if v is not None}
    )


def make_spec(build: str = "0b9e0a43-6a43-4f0e-9f59-2a8f4f5b7e11") -> WorkerSpec:
    return WorkerSpec(
        build_id=build,
        job_id=f"job/{build}",
        namespace="team-a",
        registration_token=REG_TOKEN,
        manager_address="quay.example.com:443",
        environment={
            "TOKEN": REG_TOKEN,
            "SERVER": "quay.example.com:443",
            "BUILD_UUID": build,
            "REGISTRY_HOSTNAME": "quay.example.com",
            "TLS_CERT_PATH": "/etc/manager-only/ca.pem",
        },
        manager_id="manager-1",
    )


@pytest.fixture
async def executor_for(api: K8sApiDouble) -> AsyncIterator[Callable[..., KubernetesExecutor]]:
    made: list[KubernetesExecutor] = []

    def factory(manager_id: str = "manager-1", **overrides: Any) -> KubernetesExecutor:
        ex = KubernetesExecutor(make_config(api, **overrides), manager_id)
        made.append(ex)
        return ex

    yield factory
    for ex in made:
        await ex.close()


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def assert_no_secret(text: str) -> None:
    assert REG_TOKEN not in text
    assert QUAY_PASSWORD not in text
    assert "k8s-test-token" not in text


# ---- start ---------------------------------------------------------------------------


async def test_vm_job_on_openshift_carries_every_setting(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    ex = executor_for(
        KUBERNETES_DISTRIBUTION="openshift",
        SERVICE_ACCOUNT_NAME="quay-builder",
        NODE_SELECTOR_LABEL_KEY="node-role.kubernetes.io/builder",
        NODE_SELECTOR_LABEL_VALUE="metal",
        CONTAINER_MEMORY_REQUEST="2Gi",
        CONTAINER_MEMORY_LIMITS="3Gi",
        CONTAINER_CPU_REQUEST="250m",
        CONTAINER_CPU_LIMITS="2",
        VOLUME_SIZE="16G",
        VM_MEMORY_LIMIT="6G",
        IMAGE_PULL_SECRET_NAME="pull-me",
        IMAGE_PULL_POLICY="IfNotPresent",
        DNS_POLICY="ClusterFirst",
        MAXIMUM_JOB_TIME=3600,
        RETENTION_AFTER_FINISHED=60,
        SSH_AUTHORIZED_KEYS=["ssh-ed25519 AAAA admin@example.com"],
    )
    name = await ex.start_worker(make_spec())

    job = api.get("jobs", "builder", name)
    assert job is not None
    assert name.startswith("slipway-0b9e0a43-6a43-4f0e-9f59-2a8f4f5b7e11-")
    labels = job["metadata"]["labels"]
    assert labels[k8s_manifests.LABEL_MANAGER] == "manager-1"
    assert labels[k8s_manifests.LABEL_BUILD] == "0b9e0a43-6a43-4f0e-9f59-2a8f4f5b7e11"
    assert labels["app.kubernetes.io/version"]
    # "job/<uuid>" is not label syntax: cleaned, and kept exactly in an annotation
    assert "/" not in labels[k8s_manifests.LABEL_JOB]
    assert job["metadata"]["annotations"]["slipway.io/job-id"].startswith("job/")
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 60
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["imagePullSecrets"] == [{"name": "pull-me"}]
    assert pod["serviceAccountName"] == "quay-builder"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/builder": "metal"}
    assert "volumes" not in pod  # no token mask needed: nothing is mounted
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/qemu-coreos:v1"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"] == {"privileged": True}
    assert container["resources"] == {
        "requests": {"memory": "2Gi", "cpu": "250m"},
        "limits": {"memory": "3Gi", "cpu": "2"},
    }
    env = env_of(container)
    assert env["VM_MEMORY"] == "6G"
    assert env["VM_VOLUME_SIZE"] == "16G"
    secret_ref = env["USERDATA"]["secretKeyRef"]

    # The Ignition config (with the token and pull password) lives in the Secret only.
    assert_no_secret(json.dumps(job))
    secret = api.get("secrets", "builder", secret_ref["name"])
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    ignition = json.loads(secret_values(secret)[secret_ref["key"]])
    worker_env = files_by_path(ignition)["/etc/slipway/worker.env"]
    assert REG_TOKEN in worker_env
    assert ignition["passwd"]["users"][0]["sshAuthorizedKeys"] == [
        "ssh-ed25519 AAAA admin@example.com"
    ]

    # the Job controller made its pod
    pods = api.objects("pods", "builder")
    assert [p["metadata"]["labels"]["job-name"] for p in pods] == [name]


async def test_vm_job_on_plain_kubernetes_masks_the_service_account_token(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    name = await executor_for(KUBERNETES_DISTRIBUTION="k8s", DEBUG=True).start_worker(make_spec())
    job = api.get("jobs", "builder", name)
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "secrets-mask", "emptyDir": {"medium": "Memory"}}]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "secrets-mask", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    ]
    assert "serviceAccountName" not in pod
    # the default node selector value is empty: no node selector
    assert "nodeSelector" not in pod
    # DEBUG keeps finished Jobs: no TTL
    assert "ttlSecondsAfterFinished" not in job["spec"]


async def test_podman_job_runs_the_worker_image_unprivileged(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor], tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "manager-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ex = executor_for(
        EXECUTOR="kubernetesPodman",
        BUILDER_VM_CONTAINER_IMAGE=None,
        WORKER_IMAGE="registry.example.com/slipway/worker",
        WORKER_TAG="1.2.3",
        CA_CERT=str(ca_file),
        HTTPS_PROXY="http://proxy.example.com:3128",
        KUBERNETES_DISTRIBUTION="openshift",
    )
    name = await ex.start_worker(make_spec())
    job = api.get("jobs", "builder", name)
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/slipway/worker:1.2.3"
    assert container["securityContext"] == {"privileged": False}
    env = env_of(container)
    assert env["CONTAINER_RUNTIME"] == "podman"
    assert env["BUILDAH_ISOLATION"] == "chroot"
    assert env["SERVER"] == "quay.example.com:443"
    assert env["BUILD_UUID"] == "0b9e0a43-6a43-4f0e-9f59-2a8f4f5b7e11"
    assert env["REGISTRY_HOSTNAME"] == "quay.example.com"
    assert env["HTTPS_PROXY"] == "http://proxy.example.com:3128"
    # the manager's CA travels in the Secret and is mounted where TLS_CERT_PATH points
    assert env["TLS_CERT_PATH"] == "/etc/slipway/worker-ca/ca.crt"
    assert container["volumeMounts"] == [
        {"name": "worker-ca", "mountPath": "/etc/slipway/worker-ca", "readOnly": True}
    ]
    ref = env["TOKEN"]["secretKeyRef"]
    assert_no_secret(json.dumps(job))
    secret = api.get("secrets", "builder", ref["name"])
    assert secret is not None
    values = secret_values(secret)
    assert values["TOKEN"] == REG_TOKEN
    assert values["ca.crt"].strip() == ca.cert_pem.bytes().decode().strip()


async def test_podman_job_runs_privileged_where_the_operator_says_so(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor], tmp_path: Path
) -> None:
    """Where rootless podman cannot map its user namespace, WORKER_PRIVILEGED runs the pod
    privileged; nothing else of the pod changes."""
    ca_file = tmp_path / "manager-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    common = {"EXECUTOR": "kubernetesPodman", "BUILDER_VM_CONTAINER_IMAGE": None,
              "CA_CERT": str(ca_file)}
    plain = executor_for(**common)
    privileged = executor_for(**common, WORKER_PRIVILEGED=True)
    pods = []
    builds = ("6f1c1f4e-1d1b-4c3a-9a51-0c5d8e6f7a01", "6f1c1f4e-1d1b-4c3a-9a51-0c5d8e6f7a02")
    for ex, build in zip((plain, privileged), builds, strict=True):
        job = api.get("jobs", "builder", await ex.start_worker(make_spec(build)))
        assert job is not None
        (container,) = job["spec"]["template"]["spec"]["containers"]
        pods.append(container)
    assert pods[0]["securityContext"] == {"privileged": False}
    assert pods[1]["securityContext"] == {"privileged": True}
    assert pods[0]["image"] == pods[1]["image"]


async def test_seed_example_config_gives_a_job_matching_every_setting(
    api: K8sApiDouble,
) -> None:
    loaded = load_config(DATA / "seed-config.yaml")
    assert loaded.config.manager is not None
    (seed,) = loaded.config.manager.EXECUTORS
    assert isinstance(seed, KubernetesExecutorConfig)
    # Only the cluster address, its CA and the token point at the test double.
    config = seed.model_copy(
        update={
            "K8S_API_SERVER": api.server,
            "K8S_API_TLS_CA": api.ca_path,
            "SERVICE_ACCOUNT_TOKEN": seed.SERVICE_ACCOUNT_TOKEN,
        }
    )
    api.token = "seed-service-account-token-4f1c9a"
    ex = KubernetesExecutor(config, "quay-pod-1")
    try:
        assert ex.allows("team-a", 0)  # empty MINIMUM_RETRY_THRESHOLD: no limit
        assert ex.setup_time == 180
        name = await ex.start_worker(make_spec())
        assert await ex.running_count() == 1
    finally:
        await ex.close()
    job = api.get("jobs", "builder", name)
    assert job is not None
    assert "seed-service-account-token" not in json.dumps(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "quay-builder"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["nodeSelector"] == {"beta.kubernetes.io/instance-type": "n1-standard-4"}
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/quay-quay-builder-qemu-rhcos:v3.4.0"
    assert container["resources"] == {
        "requests": {"memory": "3968Mi", "cpu": "500m"},
        "limits": {"memory": "5120Mi", "cpu": "1000m"},
    }
    env = env_of(container)
    assert env["VM_VOLUME_SIZE"] == "8G"
    assert env["VM_MEMORY"] == "4G"
    # defaults of the keys the example leaves out
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    assert job["spec"]["ttlSecondsAfterFinished"] == 120
    assert pod["dnsPolicy"] == "Default"
    assert pod["imagePullSecrets"] == [{"name": "builder"}]
    assert container["imagePullPolicy"] == "Always"
    secret = api.get("secrets", "builder", env["USERDATA"]["secretKeyRef"]["name"])
    assert secret is not None
    ignition = json.loads(secret_values(secret)["USERDATA"])
    files = files_by_path(ignition)
    assert "CONTAINER_RUNTIME=podman" in files["/etc/slipway/worker.env"]
    assert "quay-password" not in json.dumps(job)
    units = {u["name"]: u["contents"] for u in ignition["systemd"]["units"]}
    assert "registry.example.com/quay-quay-builder:some_tag" in units["slipway-worker.service"]
    assert ignition["passwd"]["users"][0]["sshAuthorizedKeys"] == [
        "ssh-rsa 12345 someuser@email.com",
        "ssh-rsa 67890 someuser2@email.com",
    ]


async def test_client_certificate_authentication(tmp_path: Path) -> None:
    api = K8sApiDouble(tmp_path / "k8s", auth="client-cert").start()
    try:
        cert, key = api.client_cert()
        config = make_config(
            api, SERVICE_ACCOUNT_TOKEN=None, K8S_API_TLS_CERT=str(cert), K8S_API_TLS_KEY=str(key)
        )
        ex = KubernetesExecutor(config, "manager-1")
        try:
            name = await ex.start_worker(make_spec())
            assert api.get("jobs", "builder", name) is not None
            assert all(r.authorization is None for r in api.requests)
        finally:
            await ex.close()
    finally:
        api.stop()


# ---- count and stop ------------------------------------------------------------------


async def test_running_count_counts_only_this_managers_unfinished_jobs(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    # a manager id that is not label syntax must still select exactly its own Jobs
    mine = executor_for("quay-0.example.com:8443/a")
    other = executor_for("quay-1.example.com:8443/a")
    names = [await mine.start_worker(make_spec(f"build-{i}")) for i in range(4)]
    await other.start_worker(make_spec("build-other"))
    assert await mine.running_count() == 4
    api.set_job_condition("builder", names[0], "Complete")
    api.set_job_condition("builder", names[1], "Failed")
    assert await mine.running_count() == 2
    assert await other.running_count() == 1


async def test_running_count_pages_through_long_lists(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    ex = executor_for()
    for i in range(3):
        await ex.start_worker(make_spec(f"build-{i}"))
    # the executor asks for pages of 500: make the server's pages tiny instead
    original = api._list

    def small_pages(resource: str, ns: str, query: dict[str, str]) -> Any:
        return original(resource, ns, {**query, "limit": "1"})

    api._list = small_pages  # type: ignore[method-assign]
    assert await ex.running_count() == 3
    assert sum(1 for r in api.requests if r.path.endswith("/jobs") and r.method == "GET") == 3


async def test_stop_removes_job_pod_and_secret_and_is_idempotent(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    ex = executor_for()
    name = await ex.start_worker(make_spec())
    assert api.objects("pods", "builder") and api.objects("secrets", "builder")
    await ex.stop_worker(name)
    assert api.get("jobs", "builder", name) is None
    assert api.objects("pods", "builder") == []
    assert api.objects("secrets", "builder") == []
    assert await ex.running_count() == 0
    await ex.stop_worker(name)  # already gone: fine
    deletes = [r for r in api.requests if r.method == "DELETE"]
    assert {r.query.get("propagationPolicy") for r in deletes} == {"Background"}


# ---- failures --------------------------------------------------------------------------




@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param(
            lambda api, tmp: {"SERVICE_ACCOUNT_TOKEN": "wrong-token-value-123"},
            ["401", "Unauthorized"],
            id="401-bad-token",
        ),
        pytest.param(
            lambda api, tmp: setattr(api, "permissions", {("list", "batch", "jobs", "*")}) or {},
            ["403", 'cannot create resource "jobs" in API group "batch"', 'namespace "builder"'],
            id="403-forbidden",
        ),
        pytest.param(
            lambda api, tmp: {"BUILDER_NAMESPACE": "no-such-ns"},
            ["404", 'namespaces "no-such-ns" not found'],
            id="404-namespace",
        ),
        pytest.param(
            lambda api, tmp: (
                api.inject(
                    status=500,
                    method="POST",
                    path_contains="/jobs",
                    message="etcdserver: request timed out",
                )
                and {}
            ),
            ["500", "etcdserver: request timed out"],
            id="500",
        ),
        pytest.param(
            lambda api, tmp: api.inject(delay=5, path_contains="/jobs") and {"K8S_API_TIMEOUT": 1},
            ["K8S_API_TIMEOUT (1 s)"],
            id="timeout",
        ),
        pytest.param(
            lambda api, tmp: {"K8S_API_TLS_CA": _other_ca(tmp)},
            ["does not verify against the CA in K8S_API_TLS_CA", "other-ca.pem"],
            id="untrusted-ca",
        ),
        pytest.param(
            lambda api, tmp: {"K8S_API_SERVER": f"127.0.0.1:{free_port()}"},
            ["cannot connect to https://127.0.0.1:"],
            id="connection-refused",
        ),
    ],
)
async def test_start_failures_raise_executor_error_with_the_api_message(
    api: K8sApiDouble,
    executor_for: Callable[..., KubernetesExecutor],
    tmp_path: Path,
    setup: Callable[[K8sApiDouble, Path], dict[str, Any]],
    expected: list[str],
) -> None:
    overrides = setup(api, tmp_path)
    ex = executor_for(**overrides)
    with pytest.raises(ExecutorError) as info:
        await ex.start_worker(make_spec())
    message = str(info.value)
    for part in expected:
        assert part in message
    assert_no_secret(message)
    assert "wrong-token-value" not in message
    assert api.objects("jobs", "builder") == []


def _other_ca(tmp: Path) -> str:
    path = tmp / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


async def test_secret_conflict_takes_the_job_back(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    api.inject(
        status=409,
        method="POST",
        path_contains="/secrets",
        message='secrets "slipway-x" already exists',
    )
    with pytest.raises(ExecutorError, match=r"409 Conflict: secrets \"slipway-x\" already exists"):
        await executor_for().start_worker(make_spec())
    assert api.objects("jobs", "builder") == []
    assert api.objects("pods", "builder") == []


async def test_count_and_stop_failures(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    ex = executor_for()
    name = await ex.start_worker(make_spec())
    api.inject(
        status=503, method="GET", message="the server is currently unable to handle the request"
    )
    with pytest.raises(
        ExecutorError, match="503 ServiceUnavailable: the server is currently unable"
    ):
        await ex.running_count()
    api.permissions = {("create", "*", "*", "*"), ("list", "*", "*", "*")}
    with pytest.raises(ExecutorError, match='cannot delete resource "jobs"') as info:
        await ex.stop_worker(name)
    assert_no_secret(str(info.value))
    assert api.get("jobs", "builder", name) is not None


async def test_missing_ca_file_is_a_clear_error(
    executor_for: Callable[..., KubernetesExecutor], tmp_path: Path
) -> None:
    ex = executor_for(K8S_API_TLS_CA=str(tmp_path / "nope.crt"))
    with pytest.raises(ExecutorError, match=r"cannot read .*nope\.crt: check K8S_API_TLS_CA in"):
        await ex.running_count()


# ---- schema validation ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["kubernetes", "kubernetesPodman"])
@pytest.mark.parametrize("distribution", ["openshift", "k8s"])
@pytest.mark.parametrize("debug", [False, True])
def test_manifests_validate_against_the_kubernetes_schemas(
    api: K8sApiDouble, kind: str, distribution: str, debug: bool
) -> None:
    config = make_config(
        api,
        EXECUTOR=kind,
        KUBERNETES_DISTRIBUTION=distribution,
        DEBUG=debug,
        NODE_SELECTOR_LABEL_VALUE="metal",
        CA_CERT=str(api.ca_path),
    )
    spec = make_spec("Weird Build/ID with spaces and a very long tail " + "x" * 80)
    job = k8s_manifests.job_manifest(
        config, spec, "m:1", "slipway-s-1", has_ca=kind != "kubernetes"
    )
    secret = k8s_manifests.secret_manifest(
        config, spec, "m:1", "slipway-s-1", {"TOKEN": "t"}, {"name": "j", "uid": "u"}
    )
    for obj in (job, secret):
        kubernetes_validate.validate(obj, "1.30", strict=True)
    for value in job["metadata"]["labels"].values():
        assert len(value) <= 63
    assert len(job["metadata"]["generateName"]) + 5 <= 63


async def test_debug_logging_shows_no_credentials(
    api: K8sApiDouble,
    executor_for: Callable[..., KubernetesExecutor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ex = executor_for(EXECUTOR="kubernetesPodman", CA_CERT=str(api.ca_path))
    await ex.stop_worker(await ex.start_worker(make_spec()))
    assert caplog.records  # the client did log
    assert_no_secret(caplog.text)
    assert base64.b64encode(REG_TOKEN.encode()).decode() not in caplog.text


async def test_podman_worker_ca_that_cannot_be_read_is_a_clear_error(
    api: K8sApiDouble, executor_for: Callable[..., KubernetesExecutor]
) -> None:
    ex = executor_for(EXECUTOR="kubernetesPodman")
    # the manager's TLS_CERT_PATH names a file this machine does not have
    with pytest.raises(ExecutorError, match=r"/etc/manager-only/ca\.pem.*set CA_CERT"):
        await ex.start_worker(make_spec())
    assert api.objects("jobs", "builder") == []
