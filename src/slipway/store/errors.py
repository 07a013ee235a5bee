"""The store's errors that callers handle, and which database errors are worth a retry,
for callers that must not know the driver."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class SecretsUnavailable(Exception):
    """A build's secrets cannot be stored or read with the key this process has."""


class ArchiveUnavailable(Exception):
    """The log archive could not be read or written (store/log_archive.py); the message
    says where and why, never with credentials."""


def is_transient(exc: BaseException) -> bool:
    """A lost or refused connection (server restarting, network), not a bad statement."""
    if isinstance(exc, (OperationalError, InterfaceError, OSError, ConnectionError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
