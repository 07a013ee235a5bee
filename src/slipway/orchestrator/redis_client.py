"""Connecting to Redis from the ORCHESTRATOR keys, and describing its errors safely."""

from __future__ import annotations

import os
from typing import Any, Protocol

from redis.asyncio import BlockingConnectionPool, Redis, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError

from slipway.orchestrator.base import OrchestratorError

MAX_CONNECTIONS = 64  # per manager process, one of them held by the subscription
POOL_WAIT = 10.0  # longest a call waits for a free connection


class RedisSettings(Protocol):
    """The ORCHESTRATOR keys (config.models.RedisConfig or anything shaped like it)."""

    REDIS_HOST: str
    REDIS_PORT: int
    REDIS_PASSWORD: Any  # SecretStr | str | None
    REDIS_DB: int
    REDIS_SSL: bool
    REDIS_CA_CERT: Any  # str | Path | None
    REDIS_CERT_AND_KEY: Any
    REDIS_SKIP_KEYSPACE_EVENT_SETUP: bool


def merge_keyspace_flags(current: str) -> str:
    """`current` plus what expiry notifications need: K (keyspace channel) and x
    (expired; "A" has it). Not g: with it every touch (a heartbeat's PEXPIRE) would be
    one more message to every manager, which only listens for expirations."""
    wanted = "K" + ("" if "A" in current else "x")
    return current + "".join(c for c in wanted if c not in current)


def connect(cfg: RedisSettings, password: str | None) -> Redis:
    """A client whose blocking pool makes a burst of calls wait for a free connection
    instead of failing."""
    return Redis.from_pool(
        BlockingConnectionPool(
            max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT, **_connection_kwargs(cfg, password)
        )
    )


def _connection_kwargs(cfg: RedisSettings, password: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        host=cfg.REDIS_HOST,
        port=int(cfg.REDIS_PORT),
        db=int(cfg.REDIS_DB),
        password=password,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=10,
        socket_keepalive=True,
        # No silent retries: a re-sent script could apply twice. Stale pooled
        # connections are still replaced when taken from the pool.
        retry=Retry(NoBackoff(), 0),
        client_name="slipway",
        # RESP2 and no CLIENT SETINFO: nothing a Redis before 7.2 (or a managed one)
        # answers with an error at every connect.
        protocol=2,
        driver_info=None,
    )
    if cfg.REDIS_SSL:
        for key in ("REDIS_CA_CERT", "REDIS_CERT_AND_KEY"):
            path = getattr(cfg, key, None)
            if path and not os.path.isfile(path):
                raise OrchestratorError(
                    f"ORCHESTRATOR.{key}: file {path} not found; give the path of a PEM file"
                )
        kwargs.update(
            connection_class=SSLConnection,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=str(cfg.REDIS_CA_CERT) if cfg.REDIS_CA_CERT else None,
        )
        if cfg.REDIS_CERT_AND_KEY:  # one PEM holding the certificate and its key
            kwargs.update(
                ssl_certfile=str(cfg.REDIS_CERT_AND_KEY),
                ssl_keyfile=str(cfg.REDIS_CERT_AND_KEY),
            )
    return kwargs


def describe_error(where: str, password: str | None, exc: BaseException) -> str:
    """The error for users and logs, never with the password in it."""
    text = f"{type(exc).__name__}: {exc}"
    if password:
        text = text.replace(password, "***")
    if isinstance(exc, AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        return f"{where} refused authentication ({text}); check ORCHESTRATOR.REDIS_PASSWORD"
    return f"{where} failed: {text}"


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
