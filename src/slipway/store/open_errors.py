"""The one line `slipway serve` prints when the database cannot be opened at start,
naming DB_URI (masked) and the fix; the driver's own text names no setting."""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from slipway.config_fields import MASK, mask_url
from slipway.startup_errors import REFUSED, TIMEOUT, UNRESOLVED, mentions_any
from slipway.store.errors import StoreUnavailable

# what store.open() raises when the database cannot be reached or refuses slipway
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError, StoreUnavailable)


def _driver_text(exc: BaseException) -> str:
    """The driver's own message, one line, without libpq's prefixes."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    # psycopg: 'connection failed: connection to server at "h" (ip), port 5432 failed:
    # FATAL:  database "x" does not exist'
    text = re.sub(r"^.* failed: (?:FATAL: |ERROR: )?", "", text)
    return text.strip().rstrip(".")


def database_problem(exc: BaseException, db_uri: str) -> str:
    """The one line for a database that could not be opened at start."""
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__  # the driver's error says why
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
    if mentions_any(text, REFUSED):
        return (f"nothing accepts connections at {at} ({shown}): start PostgreSQL there, "
                "or set DB_URI to where it runs")
    if mentions_any(text, UNRESOLVED):
        return (f"cannot resolve the host {url.host!r} ({shown}): check the host in DB_URI")
    if mentions_any(text, TIMEOUT):
        return (f"no answer from {at} ({shown}): check that PostgreSQL runs there and that "
                "a firewall lets the connection through, or set DB_URI to where it runs")
    return f"cannot open the database on {at} ({shown}): {text}; check DB_URI"
