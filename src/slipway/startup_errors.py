"""What `slipway serve` says when the database or the orchestrator cannot be reached at
start: one line naming the setting to change (DB_URI; ORCHESTRATOR's REDIS_HOST, ...),
and how, as for an address in use (server.py's bind_listener). The drivers' own texts
(SQLAlchemy's with a help link, redis-py's `Error 111`) name neither.

A password is never shown: DB_URI is masked, and the orchestrator's messages come masked
(orchestrator/redis_client.py's describe_error).
"""

from __future__ import annotations

import errno
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from slipway.config.models import ManagerConfig
from slipway.config_fields import MASK, mask_url
from slipway.orchestrator.base import OrchestratorError

# what store.open() raises when the database cannot be reached or refuses slipway
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError)

_REFUSED = ("connection refused", "error 111 ", f"errno {errno.ECONNREFUSED}")
_UNRESOLVED = ("could not translate host name", "name or service not known",
               "temporary failure in name resolution", "nodename nor servname",
               "error -2 ", "error -3 ", "error -5 ")
_TIMEOUT = ("timeout expired", "timed out", "timeout")


def _driver_text(exc: BaseException) -> str:
    """The driver's own message, one line, without libpq's prefixes."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    # psycopg: 'connection failed: connection to server at "h" (ip), port 5432 failed:
    # FATAL:  database "x" does not exist'
    text = re.sub(r"^.* failed: (?:FATAL: |ERROR: )?", "", text)
    return text.strip().rstrip(".")


def _any(text: str, needles: tuple[str, ...]) -> bool:
    lowered = f"{text.lower()} "
    return any(needle in lowered for needle in needles)


def database_problem(exc: BaseException, db_uri: str) -> str:
    """The one line for a database that could not be opened at start."""
    shown = f"DB_URI {mask_url(db_uri)}"
    text = _driver_text(exc)
    try:
        url = make_url(db_uri)
    except ArgumentError:
        return f"cannot open the database ({shown}): {text}; check DB_URI"
    if url.password:  # the drivers do not quote it; make sure of it
        text = text.replace(str(url.password), MASK)
    if url.get_backend_name() == "sqlite":
        return (f"cannot open the SQLite file {url.database} ({shown}): {text}; make its "
                "directory writable, or set DB_URI (or DATA_DIR) to a writable place")
    at = f"{url.host or 'localhost'}:{url.port or 5432}"
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        name = missing.group(1)
        return (f'database "{name}" does not exist on {at} ({shown}): create it '
                f"(createdb {name}, or CREATE DATABASE {name}), or set DB_URI to an "
                "existing database")
    role = re.search(r'role "([^"]+)" does not exist', text)
    if role:
        return (f'PostgreSQL at {at} has no user "{role.group(1)}" ({shown}): create it, or '
                "set the user in DB_URI")
    if "password authentication failed" in text or "no password supplied" in text:
        return (f"PostgreSQL at {at} refused the login ({shown}): {text}; set the user "
                "and password in DB_URI")
    if _any(text, _REFUSED):
        return (f"nothing accepts connections at {at} ({shown}): start PostgreSQL there, "
                "or set DB_URI to where it runs")
    if _any(text, _UNRESOLVED):
        return (f"cannot resolve the host {url.host!r} ({shown}): check the host in DB_URI")
    if _any(text, _TIMEOUT):
        return (f"no answer from {at} ({shown}): check that PostgreSQL runs there and that "
                "a firewall lets the connection through, or set DB_URI to where it runs")
    return f"cannot open the database on {at} ({shown}): {text}; check DB_URI"


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
    if errno.ECONNREFUSED in codes or _any(texts, _REFUSED):
        return (f"nothing accepts connections at {at} (ORCHESTRATOR.REDIS_HOST, REDIS_PORT): "
                "start Redis there, or set REDIS_HOST and REDIS_PORT under ORCHESTRATOR to "
                "where it runs")
    if _any(texts, _UNRESOLVED):
        return (f"cannot resolve the host {redis.REDIS_HOST!r} (ORCHESTRATOR.REDIS_HOST): "
                "check the host name")
    if "ssl" in texts.lower() or "certificate" in texts.lower():
        return (f"TLS with Redis at {at} failed (ORCHESTRATOR.REDIS_SSL, REDIS_CA_CERT): "
                f"{exc}; check that Redis serves TLS there and that REDIS_CA_CERT signed "
                "its certificate")
    if _any(texts, _TIMEOUT):
        return (f"no answer from Redis at {at} (ORCHESTRATOR.REDIS_HOST, REDIS_PORT): check "
                "that Redis runs there and that a firewall lets the connection through")
    return f"the Redis orchestrator at {at} could not start (ORCHESTRATOR): {exc}"
