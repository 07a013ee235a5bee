"""A kubelet for the Kubernetes API double: every pod the double's Job controller creates
is run for real as a podman container, as a node would run it: the container's image,
environment (values, and secretKeyRef read from the double's Secrets), secret and emptyDir
volumes and securityContext. When the pod goes (its Job was deleted), the container is
removed.

Nested podman (the worker's podman inside this container) needs either an unprivileged
container with /dev/fuse and user namespaces, or a privileged one. `nested_mode()` tries
the first and falls back to the second, as a cluster's set-up would; the runner then runs
build pods that way.

Containers run with host networking (the manager and registry listen on 127.0.0.1), with
runc (crun refuses this machine's hybrid cgroups), and with resource limits no higher
than this process's (it may not raise them)."""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.k8s_api import K8sApiDouble

OCI_RUNTIME = "runc"


def run_options() -> list[str]:
    """What every container of these tests is run with on this machine."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # conmon, which starts the container, may itself have a lower process limit
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], 4096)
    return [
        "--net", "host", "--pull", "never",
        "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
    ]


def podman(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", "--runtime", OCI_RUNTIME, *args],
        capture_output=True, text=True, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed: {result.stderr[-2000:]}")
    return result


UNPRIVILEGED = ["--device", "/dev/fuse"]
PRIVILEGED = ["--privileged"]


def nested_mode(worker_image: str) -> tuple[str, str]:
    """("unprivileged" or "privileged", why): the first way this machine lets the worker
    image's rootless podman set up its user namespace and image store."""
    probe = "podman info --format '{{.Store.GraphDriverName}}' && podman unshare true"
    unprivileged = podman(
        "run", "--rm", *run_options(), *UNPRIVILEGED, worker_image, "sh", "-c", probe,
        check=False, timeout=120,
    )
    if unprivileged.returncode == 0:
        return "unprivileged", "unprivileged with /dev/fuse works"
    privileged = podman(
        "run", "--rm", *run_options(), *PRIVILEGED, worker_image, "sh", "-c", probe,
        check=False, timeout=120,
    )
    if privileged.returncode == 0:
        reason = unprivileged.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return "privileged", f"unprivileged failed here ({reason[0]}); privileged works"
    raise RuntimeError(
        "the worker image's podman works neither unprivileged with /dev/fuse nor "
        f"privileged: {unprivileged.stderr[-800:]} / {privileged.stderr[-800:]}"
    )


class SecretNotYetThere(Exception):
    """A pod refers to a Secret that does not exist yet."""


@dataclass
class PodRunner:
    k8s: K8sApiDouble
    namespace: str
    mode: str  # "unprivileged" or "privileged"
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="slipway-pods-")))

    def __post_init__(self) -> None:
        self.started: dict[str, str] = {}  # pod name -> container name
        self.commands: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PodRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for container in self.started.values():
            podman("rm", "--force", "--time", "0", container, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def running(self) -> list[str]:
        """Containers of this runner that exist now."""
        names = [
            c for c in self.started.values()
            if podman("container", "exists", c, check=False).returncode == 0
        ]
        return names

    def logs(self, pod: str) -> str:
        result = podman("logs", self.started[pod], check=False)
        return result.stdout + result.stderr

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                pods = {p["metadata"]["name"]: p for p in self.k8s.objects("pods", self.namespace)}
                for name, pod in pods.items():
                    if name not in self.started:
                        try:
                            self._start(pod)
                        except SecretNotYetThere:
                            pass  # as a kubelet does: the pod waits for its Secret
                for name, container in list(self.started.items()):
                    if name not in pods:
                        podman("rm", "--force", "--time", "0", container, check=False)
            except Exception as exc:  # shown by the test that waits for the pod
                self.errors.append(repr(exc))

    def _secret_value(self, name: str, key: str) -> str:
        secret = self.k8s.get("secrets", self.namespace, name)
        if secret is None:
            raise SecretNotYetThere(name)
        return base64.b64decode(secret["data"][key]).decode()

    def _volume_dirs(self, pod_dir: Path, volumes: list[dict[str, Any]]) -> dict[str, Path]:
        dirs: dict[str, Path] = {}
        for volume in volumes:
            path = pod_dir / "volumes" / volume["name"]
            path.mkdir(parents=True)
            if "secret" in volume:
                secret_name = volume["secret"]["secretName"]
                secret = self.k8s.get("secrets", self.namespace, secret_name)
                if secret is None:
                    raise SecretNotYetThere(secret_name)
                items = volume["secret"].get("items") or [
                    {"key": k, "path": k} for k in secret["data"]
                ]
                for item in items:
                    target = path / item["path"]
                    target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
                    target.chmod(0o644)
            dirs[volume["name"]] = path
        return dirs

    def _start(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        spec = pod["spec"]
        [container] = spec["containers"]
        pod_dir = self.work / name
        env_lines = []
        for entry in container.get("env", []):
            if "value" in entry:
                value = entry["value"]
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                value = self._secret_value(ref["name"], ref["key"])
            env_lines.append(f"{entry['name']}={value}")
        # a pod whose Secret is not there yet (the executor creates the Job first, for the
        # owner reference) is tried again on the next pass, from scratch
        shutil.rmtree(pod_dir, ignore_errors=True)
        pod_dir.mkdir(parents=True)
        env_file = pod_dir / "env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(env_lines) + "\n")
        dirs = self._volume_dirs(pod_dir, spec.get("volumes", []))
        argv = ["run", "--detach", "--name", f"slipway-pod-{name}", *run_options()]
        argv += ["--env-file", str(env_file)]
        for mount in container.get("volumeMounts", []):
            source = dirs[mount["name"]]
            suffix = ":ro" if mount.get("readOnly") else ""
            if not suffix:
                source.chmod(0o777)  # the image's user writes an emptyDir
            argv += ["--volume", f"{source}:{mount['mountPath']}{suffix}"]
        privileged = (container.get("securityContext") or {}).get("privileged")
        argv += PRIVILEGED if privileged or self.mode == "privileged" else UNPRIVILEGED
        argv.append(container["image"])
        self.commands[name] = argv
        podman(*argv)
        self.started[name] = f"slipway-pod-{name}"


@contextlib.contextmanager
def quiet_cleanup(containers: list[str]) -> Any:
    try:
        yield
    finally:
        for container in containers:
            podman("rm", "--force", "--time", "0", container, check=False)
