"""One log line when the database stops answering (or fills up) and one when it is back.

During an outage every request and every worker call fails the same way; a traceback (or
a line) for each would bury the one fact an operator needs. An episode begins at the
first failure after a success and ends at the next success: any statement ends an outage,
only a committed write ends a full disk (reads go on while it is full).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from slipway.store.errors import StoreFull, StoreUnavailable

log = logging.getLogger("slipway.store")


@dataclass
class _Episode:
    since: float
    failures: int = 1


class OutageEpisodes:
    def __init__(self) -> None:
        self._unavailable: _Episode | None = None
        self._full: _Episode | None = None

    def failed(self, error: StoreUnavailable, cause: BaseException) -> None:
        full = isinstance(error, StoreFull)
        episode = self._full if full else self._unavailable
        if episode is not None:
            episode.failures += 1
            return
        episode = _Episode(time.monotonic())
        if full:
            self._full = episode
        else:
            self._unavailable = episode
        # the driver's class names the kind of failure (AdminShutdown, OperationalError);
        # its text may quote the connection string, so it is not shown
        kind = type(getattr(cause, "orig", None) or cause).__name__
        if full:
            log.warning("%s cannot be written: disk full (%s); writes answer 507 until "
                        "space is freed there", error.database, kind)
        else:
            log.warning("%s is not answering (%s); API calls answer 503, workers' calls "
                        "UNAVAILABLE, until it is back", error.database, kind)

    def succeeded(self, *, wrote: bool) -> None:
        if self._unavailable is not None:
            self._end(self._unavailable, "the database answers again")
            self._unavailable = None
        if wrote and self._full is not None:
            self._end(self._full, "the database can be written again")
            self._full = None

    @staticmethod
    def _end(episode: _Episode, what: str) -> None:
        log.warning("%s after %.1f s (%d calls failed meanwhile)",
                    what, time.monotonic() - episode.since, episode.failures)
