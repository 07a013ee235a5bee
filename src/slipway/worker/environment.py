"""The worker environment (docs/protocol.md, "Worker environment"), parsed and checked
once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from slipway.domain.loopback import is_loopback_registry
from slipway.domain.platforms import InvalidPlatform, normalize_platforms

RUNTIMES = ("podman", "buildah", "docker")
DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_FILES = 100_000
DEFAULT_CACHE_REPOSITORY = "{repository}-cache"
# REGISTRY_CACHE_PUSH: when the built steps go to the registry cache (docs/layer-cache.md)
CACHE_PUSH_DURING = "during"
CACHE_PUSH_AFTER_END = "after-end"


class WorkerEnvironmentError(ValueError):
    """A worker environment variable is missing or malformed."""


@dataclass(frozen=True)
class WorkerEnvironment:
    token: str = field(repr=False)
    server: str
    build_uuid: str = ""
    container_runtime: str = "podman"
    isolation: str = "chroot"
    insecure: bool = False
    tls_cert_path: str = ""
    docker_host: str = ""
    registry_hostname: str = ""
    # slipway additions
    insecure_registries: tuple[str, ...] = ()
    # registries on loopback (127.0.0.0/8, ::1, localhost) are plain HTTP, as for docker
    insecure_loopback: bool = False
    context_max_bytes: int = DEFAULT_MAX_BYTES
    context_max_files: int = DEFAULT_MAX_FILES
    storage_driver: str = ""  # passed as --storage-driver to podman/buildah when set
    heartbeat_interval: float = 2.0
    retry_window: float = 60.0  # how long a lost manager connection is retried
    work_dir: str = ""  # parent of the per-build temp dir; "" = system temp dir
    layer_cache: bool = False  # podman/buildah keep step layers for later builds
    sbom: bool = True  # SBOM=false: the executor's SBOM is off (docs/signing.md)
    # the registry cache (docs/layer-cache.md): on unless REGISTRY_CACHE=false
    registry_cache: bool = True
    registry_cache_repository: str = DEFAULT_CACHE_REPOSITORY
    registry_cache_exclude: tuple[str, ...] = ()  # repository patterns (fnmatch) without it
    # REGISTRY_CACHE_PUSH=after-end: the steps are pushed once the build's end is reported
    # (its executor waits for the worker to leave); else by buildah, step by step
    cache_push_after_end: bool = False
    # the executor's PLATFORMS (docs/multi-arch.md): a build that names none builds these;
    # () builds for the host's own platform
    platforms: tuple[str, ...] = ()

    def registry_is_insecure(self, registry: str) -> bool:
        registry = registry.lower()
        # a bare `localhost` is podman's local image store, never pulled: it must not make
        # a build's --tls-verify=false (which covers all its base images) necessary
        return registry in self.insecure_registries or (
            self.insecure_loopback and registry != "localhost"
            and is_loopback_registry(registry))


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise WorkerEnvironmentError(f"{name}={env[name]!r} is not a boolean: use true or false")


def _positive(env: Mapping[str, str], name: str, default: float, kind: type = int) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise WorkerEnvironmentError(
            f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number"
        ) from None
    if value <= 0:
        raise WorkerEnvironmentError(f"{name}={raw!r} must be greater than 0")
    return float(value) if kind is float else value


def load_environment(env: Mapping[str, str] | None = None) -> WorkerEnvironment:
    """Read the worker's settings; raise WorkerEnvironmentError naming the variable and the fix."""
    env = os.environ if env is None else env
    token = env.get("TOKEN", "").strip()
    if not token:
        raise WorkerEnvironmentError(
            "TOKEN is not set: the executor must pass the build's registration token"
        )
    server = env.get("SERVER", "").strip()
    if not server:
        raise WorkerEnvironmentError(
            "SERVER is not set: set it to host:port of the manager's gRPC endpoint"
        )
    runtime = env.get("CONTAINER_RUNTIME", "").strip().lower() or "podman"
    if runtime not in RUNTIMES:
        raise WorkerEnvironmentError(
            f"CONTAINER_RUNTIME={runtime!r} is not supported: use one of {', '.join(RUNTIMES)}"
        )
    # Quay's executors set the misspelt BULDAH_ISOLATION; accept both.
    isolation = (
        env.get("BUILDAH_ISOLATION", "").strip() or env.get("BULDAH_ISOLATION", "").strip()
    ) or "chroot"
    tls_cert_path = env.get("TLS_CERT_PATH", "").strip()
    insecure = _flag(env, "INSECURE")
    if tls_cert_path and not insecure and not os.path.isfile(tls_cert_path):
        raise WorkerEnvironmentError(
            f"TLS_CERT_PATH={tls_cert_path!r} is not a readable file: point it at the CA "
            "certificate (PEM) that signed the manager's certificate"
        )
    registries = tuple(
        r.strip().lower() for r in env.get("INSECURE_REGISTRIES", "").split(",") if r.strip()
    )
    return WorkerEnvironment(
        token=token,
        server=server,
        build_uuid=env.get("BUILD_UUID", "").strip(),
        container_runtime=runtime,
        isolation=isolation,
        insecure=insecure,
        tls_cert_path=tls_cert_path,
        docker_host=env.get("DOCKER_HOST", "").strip(),
        registry_hostname=env.get("REGISTRY_HOSTNAME", "").strip(),
        insecure_registries=registries,
        insecure_loopback=_flag(env, "INSECURE_LOOPBACK"),
        context_max_bytes=int(_positive(env, "CONTEXT_MAX_BYTES", DEFAULT_MAX_BYTES)),
        context_max_files=int(_positive(env, "CONTEXT_MAX_FILES", DEFAULT_MAX_FILES)),
        storage_driver=env.get("STORAGE_DRIVER", "").strip(),
        heartbeat_interval=_positive(env, "HEARTBEAT_INTERVAL", 2.0, float),
        retry_window=_positive(env, "RETRY_WINDOW", 60.0, float),
        work_dir=env.get("WORK_DIR", "").strip(),
        layer_cache=_flag(env, "LAYER_CACHE"),
        sbom=_flag(env, "SBOM", True),
        registry_cache=_flag(env, "REGISTRY_CACHE", default=True),
        registry_cache_repository=_cache_repository(env),
        registry_cache_exclude=tuple(
            p.strip() for p in env.get("REGISTRY_CACHE_EXCLUDE", "").split(",") if p.strip()
        ),
        cache_push_after_end=_cache_push(env) == CACHE_PUSH_AFTER_END,
        platforms=_platforms(env),
    )


def _platforms(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = [p for p in env.get("PLATFORMS", "").split(",") if p.strip()]
    try:
        return tuple(normalize_platforms(raw))
    except InvalidPlatform as exc:
        raise WorkerEnvironmentError(f"PLATFORMS: {exc}") from None


def _cache_repository(env: Mapping[str, str]) -> str:
    template = env.get("REGISTRY_CACHE_REPOSITORY", "").strip() or DEFAULT_CACHE_REPOSITORY
    if "{repository}" not in template:
        raise WorkerEnvironmentError(
            f"REGISTRY_CACHE_REPOSITORY={template!r} does not contain {{repository}}: each "
            "repository needs a cache of its own, e.g. {repository}-cache"
        )
    return template


def _cache_push(env: Mapping[str, str]) -> str:
    value = env.get("REGISTRY_CACHE_PUSH", "").strip().lower() or CACHE_PUSH_DURING
    if value not in (CACHE_PUSH_DURING, CACHE_PUSH_AFTER_END):
        raise WorkerEnvironmentError(
            f"REGISTRY_CACHE_PUSH={value!r} is not {CACHE_PUSH_DURING!r} or "
            f"{CACHE_PUSH_AFTER_END!r}"
        )
    return value
