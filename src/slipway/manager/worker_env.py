"""The worker environment (docs/protocol.md), as every executor passes it."""

from __future__ import annotations

from slipway.config.models import AppConfig
from slipway.executors.config_base import ExecutorConfigBase

# the worker's heartbeat interval (HEARTBEAT_INTERVAL, worker/environment.py's default)
WORKER_HEARTBEAT_INTERVAL_S = 2.0
# the longest a worker retries an unreachable manager (RETRY_WINDOW's default)
LONGEST_RETRY_WINDOW_S = 60.0


def worker_retry_window(heartbeat_expiry: float) -> float:
    """How long a worker retries a manager that does not answer (or answers UNAVAILABLE:
    its database or Redis is down): less than HEARTBEAT_EXPIRY from its last heartbeat,
    so that a worker gives up before its manager takes it for gone and runs the build
    again elsewhere, never building on beside the new attempt."""
    budget = heartbeat_expiry - WORKER_HEARTBEAT_INTERVAL_S - 1.0
    return max(1.0, min(LONGEST_RETRY_WINDOW_S, budget))


def worker_environment(
    app_config: AppConfig,
    executor_config: ExecutorConfigBase,
    *,
    token: str,
    build_id: str,
    registry: str = "",
) -> dict[str, str]:
    """`registry`: the build's push target; one the config reaches over plain HTTP is
    added to INSECURE_REGISTRIES (a loopback one with LOOPBACK_REGISTRIES is in no list)."""
    tls = bool(app_config.BUILDMAN_TLS_CERT)
    env = {
        "TOKEN": token,
        "SERVER": app_config.buildman_address,
        "BUILD_UUID": build_id,
        "CONTAINER_RUNTIME": executor_config.CONTAINER_RUNTIME,
        "BUILDAH_ISOLATION": "chroot",
        "BULDAH_ISOLATION": "chroot",  # Quay's spelling; quay-builder reads this one
        "INSECURE": "false" if tls else "true",
        "REGISTRY_HOSTNAME": app_config.SERVER_HOSTNAME,
        "CONTEXT_MAX_BYTES": str(app_config.BUILD_CONTEXT_MAX_BYTES),
        "CONTEXT_MAX_FILES": str(app_config.BUILD_CONTEXT_MAX_FILES),
    }
    if app_config.manager is not None:
        env["RETRY_WINDOW"] = f"{worker_retry_window(app_config.manager.HEARTBEAT_EXPIRY):g}"
    if tls and executor_config.CA_CERT:
        env["TLS_CERT_PATH"] = str(executor_config.CA_CERT)
    if executor_config.LAYER_CACHE:
        env["LAYER_CACHE"] = "true"
    if not executor_config.SBOM:
        env["SBOM"] = "false"
    env["REGISTRY_CACHE"] = "true" if executor_config.REGISTRY_CACHE else "false"
    env["REGISTRY_CACHE_REPOSITORY"] = executor_config.REGISTRY_CACHE_REPOSITORY
    if executor_config.cache_push_after_end:
        env["REGISTRY_CACHE_PUSH"] = "after-end"  # worker/environment.py reads it
    if executor_config.REGISTRY_CACHE_EXCLUDE:
        env["REGISTRY_CACHE_EXCLUDE"] = ",".join(executor_config.REGISTRY_CACHE_EXCLUDE)
    if executor_config.PLATFORMS:
        env["PLATFORMS"] = ",".join(executor_config.PLATFORMS)
    insecure = list(app_config.INSECURE_REGISTRIES)
    if registry and registry not in insecure and app_config.registry_is_plain_http(registry):
        # by host in the worker's registries.conf too, which some of buildah's cache
        # pushes read instead of --tls-verify (worker/registries_conf.py)
        insecure.append(registry)
    if insecure:
        env["INSECURE_REGISTRIES"] = ",".join(insecure)
    if app_config.LOOPBACK_REGISTRIES:  # base images on loopback too, as docker pulls them
        env["INSECURE_LOOPBACK"] = "true"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        value = getattr(executor_config, name, None)
        if value:
            env[name] = str(value)
    return env
