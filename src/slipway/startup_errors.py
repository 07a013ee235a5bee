"""What `slipway serve` says when the database or the orchestrator cannot be reached at
start: one line naming the setting to change (DB_URI; ORCHESTRATOR's REDIS_HOST, ...),
and how, as for an address in use (server.py's bind_listener). The drivers' own texts
(SQLAlchemy's with a help link, redis-py's `Error 111`) name neither. The database's
line is the store's to word (store/open_errors.py: SQL stays in store/); the kinds of
failure both read are here.

A password is never shown: DB_URI is masked, and the orchestrator's messages come masked
(orchestrator/redis_client.py's describe_error).
"""

from __future__ import annotations

import errno

from slipway.config.models import ManagerConfig
from slipway.orchestrator.base import OrchestratorError

REFUSED = ("connection refused", "error 111 ", f"errno {errno.ECONNREFUSED}")
UNRESOLVED = ("could not translate host name", "name or service not known",
               "temporary failure in name resolution", "nodename nor servname",
               "error -2 ", "error -3 ", "error -5 ")
TIMEOUT = ("timeout expired", "timed out", "timeout")


def mentions_any(text: str, needles: tuple[str, ...]) -> bool:
    lowered = f"{text.lower()} "
    return any(needle in lowered for needle in needles)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or during (OrchestratorError hides its cause
    with `from None`, but keeps it as __context__)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def orchestrator_problem(exc: OrchestratorError, manager: ManagerConfig | None) -> str:
    """The one line for a Redis orchestrator that could not be started."""
    redis = manager.ORCHESTRATOR if manager is not None else None
    if redis is None:  # the in-memory one does not fail; say what was said
        return f"the orchestrator could not start: {exc}"
    at = f"{redis.REDIS_HOST}:{redis.REDIS_PORT}"
    # the messages in the chain, the first (describe_error's) masked; a cause's text
    # is read only for its kind, never shown
    texts = " ".join(str(e) for e in _causes(exc))
    codes = {getattr(e, "errno", None) for e in _causes(exc)}
    if "REDIS_PASSWORD" in str(exc):
        return (f"Redis at {at} refused the login (ORCHESTRATOR.REDIS_PASSWORD): set the "
                "password that Redis expects")
    if errno.ECONNREFUSED in codes or mentions_any(texts, REFUSED):
        return (f"nothing accepts connections at {at} (ORCHESTRATOR.REDIS_HOST, REDIS_PORT): "
                "start Redis there, or set REDIS_HOST and REDIS_PORT under ORCHESTRATOR to "
                "where it runs")
    if mentions_any(texts, UNRESOLVED):
        return (f"cannot resolve the host {redis.REDIS_HOST!r} (ORCHESTRATOR.REDIS_HOST): "
                "check the host name")
    if "ssl" in texts.lower() or "certificate" in texts.lower():
        return (f"TLS with Redis at {at} failed (ORCHESTRATOR.REDIS_SSL, REDIS_CA_CERT): "
                f"{exc}; check that Redis serves TLS there and that REDIS_CA_CERT signed "
                "its certificate")
    if mentions_any(texts, TIMEOUT):
        return (f"no answer from Redis at {at} (ORCHESTRATOR.REDIS_HOST, REDIS_PORT): check "
                "that Redis runs there and that a firewall lets the connection through")
    return f"the Redis orchestrator at {at} could not start (ORCHESTRATOR): {exc}"
