"""Building blocks shared by the config models: field helper, custom errors, value types."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

MASK = "*****"

# Keys whose values are secrets: never shown in errors or output.
SECRET_KEYS = frozenset(
    {
        "REDIS_PASSWORD",
        "SERVICE_ACCOUNT_TOKEN",
        "QUAY_PASSWORD",
        "AWS_SECRET_KEY",
        "AWS_ACCESS_KEY",
        "password",
        "DATABASE_SECRET_KEY",
        "BUILD_SECRETS",
        "BUILD_SECRETS_KEY",
        "s3_access_key",
        "s3_secret_key",
        "access_key",
        "secret_key",
        "ACCESS_KEY",  # LOG_ARCHIVE
        "SECRET_KEY",
        "CLIENT_SECRET",  # ACCESS.OIDC
    }
)

_URL_PASSWORD = re.compile(r"^([A-Za-z][\w+.-]*://[^:/@]*:)(.*)(@[^@]*)$", re.DOTALL)


def mask_url(value: str) -> str:
    """Hide the password of a URL such as postgresql://user:pw@host/db (DB_URI, proxies)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", value)


def field(
    default: Any = ..., *, example: Any, description: str = "", unit: str = "", **kwargs: Any
) -> Any:
    """A pydantic Field carrying the example and unit used in error messages."""
    extra: dict[str, Any] | None = {"unit": unit} if unit else None
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(examples=[example], description=description, json_schema_extra=extra, **kwargs)


def problem(message: str, key: str = "") -> PydanticCustomError:
    """A validation error whose text is already ours. `key` is appended to the YAML path
    (for errors raised by a model validator about one of its keys)."""
    return PydanticCustomError("slipway", "{message}", {"message": message, "key": key})


def show(value: Any) -> str:
    """A value as quoted in an error message (containers are not expanded: they may hold
    secrets and are unreadable on one line anyway)."""
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(mask_url(value))
    return repr(value)


def _as_text(value: Any) -> Any:
    # YAML turns 8080 or 3.4 into numbers; for text keys the user meant the text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _host_port(value: Any, info: ValidationInfo) -> Any:
    value = _as_text(value)
    if not isinstance(value, str):
        return value
    if "://" in value:
        bare = value.split("://", 1)[1].rstrip("/")
        raise problem(
            f"{value!r} must be host:port without a scheme; write e.g. {info.field_name}: {bare}"
        )
    host, port = split_host_port(value)
    if not host or port is None or not 0 < port < 65536:
        raise problem(
            f"{value!r} is not host:port (a host name or address, a colon and a "
            f"port number 1-65535); write e.g. {info.field_name}: 127.0.0.1:8700"
        )
    return value


def split_host_port(value: str) -> tuple[str, int | None]:
    """'host:port' / '[::1]:port' / 'host' -> (host, port or None)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        host = f"[{host}]"
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    if not port_text:
        return host, None
    if not port_text.isdigit():
        return host, -1
    return host, int(port_text)


# Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity), e.g. 3968Mi, 500m, 8G.
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")


def _quantity(value: Any, info: ValidationInfo) -> Any:
    value = _as_text(value)
    if isinstance(value, str) and not _QUANTITY.match(value):
        example = "500m" if "CPU" in (info.field_name or "") else "4096Mi"
        raise problem(
            f"{value!r} is not a Kubernetes quantity (a number with an optional "
            "unit: Ki Mi Gi Ti, k M G T, or m for thousandths of a CPU); write e.g. "
            f"{info.field_name}: {example}"
        )
    return value


HostPort = Annotated[str, BeforeValidator(_host_port)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
