"""Running a store operation once more when its connection died under it.

After a PostgreSQL restart (or failover, or a connection reset) every pooled connection is
dead, and the first statement on each fails although the server is back; SQLAlchemy then
renews the pool. An operation whose connection died before its commit left nothing behind,
so running it again, whole, on a fresh connection is what its caller would have done.
Only operations that open their own connection (`db.read()`, `db.lookup()`, `db.write()`)
and change nothing outside the database may be marked so: one given a caller's `conn` is
part of a transaction that is already lost.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from slipway.store.errors import StoreUnavailable

log = logging.getLogger("slipway.store")
P = ParamSpec("P")
T = TypeVar("T")


def rerun_if_connection_lost(
    operation: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """`operation` run again, once, when its connection died before any commit (a
    database that cannot be reached at all fails at once: a second try would only wait)."""

    @functools.wraps(operation)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await operation(*args, **kwargs)
        except StoreUnavailable as exc:
            if not exc.rerun_safe:
                raise
            log.debug("%s: its connection was lost; running it again on a fresh one",
                     operation.__qualname__)
        return await operation(*args, **kwargs)

    return run
