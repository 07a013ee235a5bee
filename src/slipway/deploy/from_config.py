"""What a config.yaml must say to run as N replicas in a pod, and the addresses and ports
the manifests take from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from slipway.config.models import AppConfig
from slipway.config_fields import split_host_port

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass
class ConfigFacts:
    http_port: int
    grpc_port: int
    http_host: str = ""
    grpc_host: str = ""
    problems: list[str] = field(default_factory=list)


def _port(value: str) -> int:
    port = split_host_port(value)[1]
    return port if port and port > 0 else 0


def config_facts(config: AppConfig, replicas: int) -> ConfigFacts:
    """The ports and public hosts of `config`, and each thing that would keep it from
    working behind a Service with `replicas` replicas (with the fix)."""
    facts = ConfigFacts(
        http_port=_port(config.API_LISTEN_ADDRESS), grpc_port=_port(config.GRPC_LISTEN_ADDRESS)
    )
    for key in ("API_LISTEN_ADDRESS", "GRPC_LISTEN_ADDRESS"):
        value = str(getattr(config, key))
        host = split_host_port(value)[0]
        if host in _LOOPBACK:
            port = split_host_port(value)[1]
            facts.problems.append(
                f"{key} is {value}: a pod's loopback address, which the Service cannot "
                f"reach; set {key}: 0.0.0.0:{port}"
            )
    public = urlsplit(str(config.PUBLIC_URL))
    if public.hostname and public.hostname not in ("127.0.0.1", "localhost", "::1"):
        facts.http_host = public.hostname
    grpc_host = split_host_port(str(config.BUILDMAN_HOSTNAME))[0]
    if grpc_host and grpc_host not in ("localhost", "127.0.0.1", "[::1]"):
        facts.grpc_host = grpc_host
    if not config.BUILDMAN_TLS_CERT:
        facts.problems.append(
            "BUILDMAN_TLS_CERT is not set: workers reach the gRPC service through TLS "
            "passed through (or re-encrypted) to the pod, so it must serve TLS; add "
            "BUILDMAN_TLS_CERT and BUILDMAN_TLS_KEY (files in the config Secret, "
            "e.g. /conf/stack/ssl.cert and /conf/stack/ssl.key)"
        )
    if replicas > 1:
        if str(config.DB_URI).startswith("sqlite"):
            facts.problems.append(
                f"DB_URI is SQLite, which {replicas} replicas cannot share; set "
                "DB_URI: postgresql://USER:PASSWORD@HOST/DATABASE"
            )
        manager = config.manager
        if manager is not None and manager.ORCHESTRATOR is None:
            facts.problems.append(
                f"BUILD_MANAGER has no ORCHESTRATOR: the in-memory one serves one process, "
                f"not {replicas} replicas; add ORCHESTRATOR: {{REDIS_HOST: ...}}"
            )
    return facts
