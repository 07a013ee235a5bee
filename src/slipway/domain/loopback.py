"""Registries on loopback: 127.0.0.0/8, ::1 and localhost, with any port.

docker reaches such a registry over plain HTTP without being told (its `insecure
registries` include 127.0.0.0/8 by default): a registry on one's own machine is almost
always a plain-HTTP `docker-registry`/`registry:2`, and traffic on loopback never leaves
the host. slipway's embedded default does the same (LOOPBACK_REGISTRIES,
docs/configuration.md): the manager admits a push there and the worker reaches it over
plain HTTP.
"""

from __future__ import annotations

import ipaddress

# What a one-user machine's own registry is usually called; `localhost` alone is also
# podman's name for its local image store (a FROM localhost/... image is never pulled).
LOOPBACK_NAMES = ("localhost",)


def registry_host_name(registry: str) -> str:
    """The host of `registry` (host[:port], IPv6 in brackets), lowercase, no port."""
    registry = registry.strip().lower()
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback_registry(registry: str) -> bool:
    """Whether `registry` (host[:port]) is on this host's loopback interface, by its name
    alone: no DNS lookup, so `localhost.example.com` or a name that resolves to 127.0.0.1
    is not loopback."""
    host = registry_host_name(registry)
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
