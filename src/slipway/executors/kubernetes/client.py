"""The Kubernetes API client of one executor config (kubernetes_asyncio, configured by hand
from the YAML keys, not from a kubeconfig), and the translation of its failures into
messages an operator can act on, free of credentials."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from slipway.executors.kubernetes.config import KubernetesExecutorConfig
from slipway.secret import reveal


class _NoBodies(logging.Filter):
    """kubernetes_asyncio logs every response body at DEBUG; a created Secret's answer
    holds the worker's token, so those records never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("response body")


logging.getLogger("kubernetes_asyncio.client.rest").addFilter(_NoBodies())


def api_base_url(server: str) -> str:
    """K8S_API_SERVER is host:port (Quay); a full https:// URL is accepted too."""
    server = server.strip().rstrip("/")
    return server if server.startswith(("https://", "http://")) else f"https://{server}"


def bearer_token(config: KubernetesExecutorConfig) -> str | None:
    return reveal(config.SERVICE_ACCOUNT_TOKEN)


def make_configuration(config: KubernetesExecutorConfig) -> Configuration:
    conf = Configuration(host=api_base_url(config.K8S_API_SERVER))
    # None: ssl.create_default_context() uses the system trust store.
    conf.ssl_ca_cert = str(config.K8S_API_TLS_CA) if config.K8S_API_TLS_CA else None
    token = bearer_token(config)
    if token:
        conf.api_key = {"BearerToken": token}
        conf.api_key_prefix = {"BearerToken": "Bearer"}
    if config.K8S_API_TLS_CERT:
        conf.cert_file = str(config.K8S_API_TLS_CERT)
        conf.key_file = str(config.K8S_API_TLS_KEY) if config.K8S_API_TLS_KEY else None
    return conf


def make_api_client(config: KubernetesExecutorConfig) -> ApiClient:
    """Must run inside the event loop (the aiohttp session binds to it). Raises
    ValueError when the CA or client certificate files cannot be loaded."""
    for key in ("K8S_API_TLS_CA", "K8S_API_TLS_CERT", "K8S_API_TLS_KEY"):
        path = getattr(config, key)
        if path and not Path(path).is_file():
            raise ValueError(
                f"cannot read {path}: check {key} in the executor config (the file must "
                "exist on the manager's machine)"
            )
    conf = make_configuration(config)
    try:
        return ApiClient(configuration=conf)
    except ssl.SSLError as exc:
        raise ValueError(
            f"cannot load the TLS files of K8S_API_TLS_CA / K8S_API_TLS_CERT / "
            f"K8S_API_TLS_KEY: {exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise ValueError(
            f"cannot read {exc.filename or 'a TLS file'}: check K8S_API_TLS_CA / "
            f"K8S_API_TLS_CERT / K8S_API_TLS_KEY in the executor config ({exc.strerror})"
        ) from None


def status_of(exc: ApiException) -> dict[str, Any]:
    """The API's `Status` object of a failed call (empty when the body is not one)."""
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def describe_api_exception(exc: ApiException) -> str:
    status = status_of(exc)
    code = status.get("code") or exc.status
    reason = status.get("reason") or exc.reason or ""
    message = status.get("message") or ""
    text = f"HTTP {code} {reason}".rstrip()
    return f"{text}: {message}" if message else text


def describe_failure(
    exc: BaseException, config: KubernetesExecutorConfig, timeout: float
) -> str | None:
    """One line for a failed API call, or None if `exc` is not a call failure."""
    url = api_base_url(config.K8S_API_SERVER)
    if isinstance(exc, ApiException):
        return describe_api_exception(exc)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        where = (
            f"the CA in K8S_API_TLS_CA ({config.K8S_API_TLS_CA})"
            if config.K8S_API_TLS_CA
            else "the system trust store (set K8S_API_TLS_CA to the cluster's CA file)"
        )
        return (
            f"the TLS certificate of {url} does not verify against {where}: {exc.certificate_error}"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {url}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return f"no answer from {url} within K8S_API_TIMEOUT ({timeout:g} s)"
    if isinstance(exc, aiohttp.ClientError):
        return f"request to {url} failed: {exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error talking to {url}: {exc.reason or exc}"
    return None


def redact(text: str, config: KubernetesExecutorConfig) -> str:
    """Belt and braces: no message leaves with a credential in it."""
    for secret in (bearer_token(config), reveal(config.QUAY_PASSWORD)):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
