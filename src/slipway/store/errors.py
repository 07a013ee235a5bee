"""The store's errors that callers handle, and which database errors are worth a retry,
for callers that must not know the driver.

A database that does not answer (stopped, restarting, failing over, unreachable) or has
no room left is one error to the rest of slipway, `StoreUnavailable` (`StoreFull` for the
latter): the API answers it 503 (507), the gRPC service UNAVAILABLE, and code that must
finish what it started retries it (manager/db_retry.py). Which driver errors mean that is
decided here, once (`unavailable_error`), and nowhere else.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from slipway.config_fields import mask_url

# what a client is told to wait before it tries again
RETRY_AFTER_S = 5

# SQLite's errors that mean the file cannot be used right now, not a bad statement:
# SQLite raises OperationalError for "no such table" and syntax errors too
SQLITE_UNAVAILABLE = frozenset({"SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_BUSY",
                                "SQLITE_LOCKED", "SQLITE_READONLY", "SQLITE_NOTADB"})
SQLITE_FULL = "SQLITE_FULL"


class SecretsUnavailable(Exception):
    """A build's secrets cannot be stored or read with the key this process has."""


class StoreUnavailable(Exception):
    """The database does not answer; nothing of the failed operation was committed unless
    `commit_unknown`. `rerun_safe`: the connection was lost before the commit, so the whole
    operation may run again on a fresh connection."""

    def __init__(self, message: str, *, database: str = "the database",
                 retry_after: int = RETRY_AFTER_S, rerun_safe: bool = False,
                 commit_unknown: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.database = database  # which one, DB_URI masked
        self.retry_after = retry_after
        self.rerun_safe = rerun_safe
        self.commit_unknown = commit_unknown


class StoreFull(StoreUnavailable):
    """The database has no room left (SQLite's file system full): writes fail until space
    is freed; reads go on."""


class ArchiveUnavailable(Exception):
    """The log archive could not be read or written (store/log_archive.py); the message
    says where and why, never with credentials."""


def is_transient(exc: BaseException) -> bool:
    """A lost or refused connection (server restarting, network), not a bad statement."""
    if isinstance(exc, (StoreUnavailable, OperationalError, InterfaceError, OSError,
                        ConnectionError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


# PostgreSQL's codes for a session ended under a statement: admin_shutdown,
# crash_shutdown, connection_failure, connection_does_not_exist
SESSION_ENDED = frozenset({"57P01", "57P02", "08006", "08003"})


def connection_lost(exc: BaseException) -> bool:
    """The connection was open and died under the statement (an administrator's shutdown,
    a reset, a failover): the statement never ran to its end."""
    if not isinstance(exc, DBAPIError):
        return False
    return bool(exc.connection_invalidated) or \
        getattr(exc.orig, "sqlstate", None) in SESSION_ENDED


def _sqlite_code(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, sqlite3.Error):
        return None
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        # extended codes (SQLITE_IOERR_WRITE, SQLITE_CANTOPEN_ISDIR, ...) by their family
        family = "_".join(name.split("_")[:2])
        return family
    text = str(orig).lower()
    if "database or disk is full" in text:
        return SQLITE_FULL
    if "unable to open" in text or "disk i/o error" in text or "locked" in text:
        return "SQLITE_CANTOPEN"
    return "SQLITE_ERROR"  # a bad statement, a missing table


def describe_database(db_uri: str) -> str:
    """'the database (DB_URI postgresql://user:*****@host:5432/db)', password masked."""
    return f"the database (DB_URI {mask_url(db_uri)})"


def unavailable_error(exc: BaseException, db_uri: str, *, in_commit: bool = False
                      ) -> StoreUnavailable | None:
    """The StoreUnavailable (or StoreFull) that `exc` means, or None for any other error
    (a bad statement, a constraint: the caller's to see as it is). `in_commit`: it was
    raised by the commit, which may have taken effect."""
    if isinstance(exc, StoreUnavailable):
        return exc
    where = describe_database(db_uri)
    code = _sqlite_code(exc)
    if code == SQLITE_FULL:
        return StoreFull(
            f"{where} cannot be written: disk full; free space on its disk, then try "
            f"again in {RETRY_AFTER_S} s", database=where)
    if code is not None and code not in SQLITE_UNAVAILABLE:
        return None  # SQLite's OperationalError for a bad statement
    lost = connection_lost(exc)
    # only the database's own errors: an OSError raised by other code inside a
    # transaction is not the database's doing
    unavailable = code is not None or lost or isinstance(
        exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout))
    if not unavailable:
        return None
    return StoreUnavailable(
        f"{where} is not answering; try again in {RETRY_AFTER_S} s", database=where,
        rerun_safe=lost and not in_commit, commit_unknown=in_commit)


class TriggerNameTaken(Exception):
    """Another trigger of the repository has this name."""
