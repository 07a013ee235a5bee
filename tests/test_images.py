"""slipway's own images, run as a cluster would run them: the kubernetesPodman executor
creates a Job on the Kubernetes API double, a kubelet (support/pod_runner.py) runs its pod
with podman, and the worker image registers, builds a multi-stage Dockerfile with its own
podman, and pushes to a real registry; skopeo checks the digest. Then the same with the
manager itself running from its image.

The images are built once per session by scripts/make-images.sh (`make images`): the
Debian base once per machine, the rest from podman's layer cache when nothing changed."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.k8s_api import K8sApiDouble
from support.pod_runner import PodRunner, nested_mode, podman, run_options
from support.registry import Registry, free_port
from support.server import BuildApi, running_server

from slipway import __version__

pytestmark = [pytest.mark.podman, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
MANAGER_IMAGE = f"quay.io/slipway/slipway:{__version__}"
WORKER_IMAGE = f"quay.io/slipway/slipway-worker:{__version__}"
DOCKERFILE = """\
FROM {base} AS builder
ARG GREETING=hello
RUN echo "$GREETING from a slipway-worker pod" > /greeting.txt

FROM {base}
COPY --from=builder /greeting.txt /greeting.txt
COPY app.txt /app.txt
RUN cat /greeting.txt /app.txt
"""


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    missing = [t for t in ("podman", "mmdebstrap", "runc", "skopeo") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run `make system`, then `make images`")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "make-images.sh")],
        capture_output=True, text=True, timeout=1500, cwd=ROOT,
    )
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"make-images.sh failed:\n{output}"
    return {"manager": MANAGER_IMAGE, "worker": WORKER_IMAGE}


@pytest.fixture(scope="session")
def nested(images: dict[str, str]) -> tuple[str, str]:
    return nested_mode(images["worker"])


@pytest.fixture
def registry_base(registry: Registry, base_image: str) -> str:
    """The busybox base image, in the registry: a worker pod has an image store of its
    own, so it pulls its base as it would in a cluster."""
    target = f"{registry.host}/library/base:latest"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
         f"containers-storage:{base_image}", f"docker://{target}"],
        check=True, capture_output=True, timeout=120,
    )
    return target


def skopeo_digest(reference: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return str(json.loads(out)["Digest"])


@pytest.fixture
def k8s(tmp_path: Path) -> Iterator[K8sApiDouble]:
    double = K8sApiDouble(tmp_path / "k8s", namespaces=("builder",)).start()
    yield double
    double.stop()


def executor_config(k8s: K8sApiDouble, ca_path: str, mode: str) -> dict[str, Any]:
    # no WORKER_IMAGE: the default, slipway's own worker image at this version; privileged
    # where this machine cannot run the pod rootless (the kubelet honours the pod's spec)
    return {
        "WORKER_PRIVILEGED": mode == "privileged",
        "EXECUTOR": "kubernetesPodman", "NAME": "cluster",
        "K8S_API_SERVER": k8s.server, "K8S_API_TLS_CA": ca_path,
        "SERVICE_ACCOUNT_TOKEN": k8s.token, "BUILDER_NAMESPACE": "builder",
        "CONTAINER_RUNTIME": "podman", "IMAGE_PULL_POLICY": "IfNotPresent",
    }


async def build_and_check(
    slipway: BuildApi, registry: Registry, base: str, runner: PodRunner, repo: str
) -> None:
    file_id = await slipway.upload_context({
        "Dockerfile": DOCKERFILE.format(base=base), "app.txt": "app content\n"})
    build = await slipway.start_build(
        "demo", repo, file_id=file_id, docker_tags=["latest", "v1"],
        build_args={"GREETING": "bonjour"})
    final = await slipway.wait_final("demo", repo, build["id"], within=900)
    logs = await slipway.logs("demo", repo, build["id"])
    pods = list(runner.started)
    detail = {
        "final": final, "mode": runner.mode, "errors": runner.errors,
        "logs": [e["message"] for e in logs][-25:],
        "pod logs": [runner.logs(p)[-2000:] for p in pods],
    }
    assert final["phase"] == "complete", detail
    # one pod, from the executor's default image: slipway's own worker
    assert len(pods) == 1, detail
    [container] = [c for c in runner.commands.values()]
    assert container[-1] == WORKER_IMAGE
    digest = final["image_digest"]
    assert digest.startswith("sha256:")
    for tag in ("latest", "v1"):
        assert skopeo_digest(f"{registry.host}/demo/{repo}:{tag}") == digest
    phases = [e["message"] for e in logs if e.get("type") == "phase"]
    assert phases == ["waiting", "build-scheduled", "unpacking", "pulling", "building",
                      "pushing", "complete"], {**detail, "logs": [e["message"] for e in logs]}
    assert any("bonjour from a slipway-worker pod" in e["message"] for e in logs)
    # the executor deletes the Job at the end; the kubelet then removes the container
    deadline = time.monotonic() + 120
    while runner.running():
        assert time.monotonic() < deadline, "the worker's container outlived its Job"
        await asyncio.sleep(0.5)


async def test_worker_image_builds_in_a_pod_of_the_kubernetes_executor(
    tmp_path: Path, images: dict[str, str], nested: tuple[str, str], k8s: K8sApiDouble,
    registry: Registry, registry_base: str,
) -> None:
    with PodRunner(k8s, "builder", "unprivileged") as runner:
        async with running_server(
            tmp_path,
            SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
            BUILD_MANAGER=["ephemeral", {"EXECUTORS": [
                executor_config(k8s, str(k8s.ca_path), nested[0])]}],
        ) as slipway:
            await build_and_check(slipway, registry, registry_base, runner, "in-a-pod")


async def test_manager_image_serves_and_its_pods_build(
    tmp_path: Path, images: dict[str, str], nested: tuple[str, str], k8s: K8sApiDouble,
    registry: Registry, registry_base: str,
) -> None:
    conf, data = tmp_path / "conf", tmp_path / "data"
    conf.mkdir()
    data.mkdir(mode=0o777)
    data.chmod(0o777)  # the image's non-root user writes DATA_DIR on this mount
    shutil.copy(k8s.ca_path, conf / "k8s-ca.pem")
    api_port, grpc_port = free_port(), free_port()
    (conf / "config.yaml").write_text(yaml.safe_dump({
        "SERVER_HOSTNAME": registry.host, "INSECURE_REGISTRIES": [registry.host],
        "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{grpc_port}",
        "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [
            executor_config(k8s, "/conf/stack/k8s-ca.pem", nested[0])]}],
    }))
    name = f"slipway-manager-{api_port}"
    # as the Deployment runs it: its own user, a read-only root, the config mounted
    podman("run", "--detach", "--name", name, *run_options(), "--read-only",
           "--volume", f"{conf}:/conf/stack:ro", "--volume", f"{data}:/var/lib/slipway",
           images["manager"])
    try:
        base_url = f"http://127.0.0.1:{api_port}"
        ready = await _wait_ready(base_url, name)
        assert ready["ready"] is True
        user = podman("exec", name, "id", "-u").stdout.strip()
        assert user == "1001"
        token = (data / "slipway" / "admin-token").read_text().strip()
        with PodRunner(k8s, "builder", "unprivileged") as runner:
            async with httpx.AsyncClient(
                base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as api:
                slipway = BuildApi(api, base_url)
                await build_and_check(slipway, registry, registry_base, runner, "from-image")
    finally:
        logs = podman("logs", name, check=False)
        podman("stop", "--time", "30", name, check=False)
        podman("rm", "--force", name, check=False)
    assert "slipway is running" in logs.stderr + logs.stdout


async def _wait_ready(base_url: str, container: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while True:
            try:
                health = await client.get("/healthz")
                ready = await client.get("/readyz")
                if health.status_code == 200 and ready.status_code == 200:
                    return dict(ready.json())
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                logs = podman("logs", container, check=False)
                raise AssertionError(f"the manager never got ready: {logs.stderr[-3000:]}")
            await asyncio.sleep(0.5)


def test_images_carry_the_version_and_run_as_their_own_users(images: dict[str, str]) -> None:
    for key, user in (("manager", "1001"), ("worker", "1000")):
        [info] = json.loads(podman("image", "inspect", images[key]).stdout)
        assert info["Config"]["User"] == user
        assert info["Config"]["Labels"]["org.opencontainers.image.version"] == __version__
        # built from the local Debian base: the image's history has no pulled layer
        assert info["RepoTags"] == [images[key]]
    version = podman("run", "--rm", *run_options(), images["manager"], "--version")
    assert version.stdout.strip() == f"slipway {__version__}"
    # the worker names what is missing when started outside an executor
    bare = podman("run", "--rm", *run_options(), images["worker"], check=False)
    assert bare.returncode == 2
    assert "TOKEN is not set" in bare.stderr


def test_manager_image_keeps_what_slipway_loads(images: dict[str, str]) -> None:
    """The image leaves out most of botocore's models (issue 16): the clients slipway makes
    (EC2 executor, S3 user files) and the Kubernetes client still load, on a read-only root."""
    script = (
        "import boto3, kubernetes_asyncio.client, kubernetes_asyncio.config\n"
        "keys = dict(region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')\n"
        "boto3.client('ec2', **keys)\n"
        "boto3.client('sts', **keys)\n"
        "s3 = boto3.session.Session().client('s3', **keys)\n"
        "print(s3.generate_presigned_url('get_object', Params={'Bucket': 'b', 'Key': 'k'}))\n"
    )
    result = podman("run", "--rm", *run_options(), "--read-only",
                    "--entrypoint", "/opt/slipway/bin/python", images["manager"], "-c", script,
                    check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("https://s3.amazonaws.com/b/k?")
