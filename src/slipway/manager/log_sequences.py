"""Each job's last log sequence number this process has taken, across the job's streams.

A worker re-sends the lines not yet acknowledged on a new LogMessage stream when its
connection drops (worker/reporter.py). When the manager had stored them and only the
acknowledgement was lost (a connection cut at that moment), the new stream must refuse
them as duplicates: the last number is this process's, not one stream's. (A worker that
reconnects to another manager is not covered: that manager has not seen its lines.)

A number is taken before its line is written, so two streams of one job (the old one
not yet torn down) cannot both store it, and given back when the write fails, so the
worker's re-send is stored.
"""

from __future__ import annotations

from collections import OrderedDict

# how many jobs' numbers a manager remembers (a few dozen bytes each): far more than run
# at once
JOBS_REMEMBERED = 50_000


class LogSequences:
    def __init__(self, remembered: int = JOBS_REMEMBERED) -> None:
        self._remembered = remembered
        self._last: OrderedDict[str, int] = OrderedDict()

    def last(self, job_id: str) -> int:
        """The job's last number taken; -1 when none was."""
        return self._last.get(job_id, -1)

    def take(self, job_id: str, number: int) -> None:
        self._last[job_id] = number
        self._last.move_to_end(job_id)
        while len(self._last) > self._remembered:
            self._last.popitem(last=False)

    def give_back(self, job_id: str, taken: int, previous: int) -> None:
        """The write of lines up to `taken` failed: the job's last number is `previous`
        again, unless a later line was taken since."""
        if self._last.get(job_id) != taken:
            return
        if previous < 0:
            del self._last[job_id]
        else:
            self._last[job_id] = previous
