"""The worker environment (docs/protocol.md), as every executor passes it."""

from __future__ import annotations

from slipway.config.models import AppConfig
from slipway.executors.config_base import ExecutorConfigBase


def worker_environment(
    app_config: AppConfig, executor_config: ExecutorConfigBase, *, token: str, build_id: str
) -> dict[str, str]:
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
    if tls and executor_config.CA_CERT:
        env["TLS_CERT_PATH"] = str(executor_config.CA_CERT)
    if executor_config.LAYER_CACHE:
        env["LAYER_CACHE"] = "true"
    env["REGISTRY_CACHE"] = "true" if executor_config.REGISTRY_CACHE else "false"
    env["REGISTRY_CACHE_REPOSITORY"] = executor_config.REGISTRY_CACHE_REPOSITORY
    if executor_config.REGISTRY_CACHE_EXCLUDE:
        env["REGISTRY_CACHE_EXCLUDE"] = ",".join(executor_config.REGISTRY_CACHE_EXCLUDE)
    if executor_config.PLATFORMS:
        env["PLATFORMS"] = ",".join(executor_config.PLATFORMS)
    if app_config.INSECURE_REGISTRIES:
        env["INSECURE_REGISTRIES"] = ",".join(app_config.INSECURE_REGISTRIES)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        value = getattr(executor_config, name, None)
        if value:
            env[name] = str(value)
    return env
