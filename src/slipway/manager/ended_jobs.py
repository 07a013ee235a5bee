"""The attempts this process has seen end, so that their workers' later calls are
refused without a round trip to the orchestrator (manager/current_attempt.py).

Only ends that `Attempts` decided or heard of go in (its own ends, and the job keys
other managers deleted): a job key merely found missing is not remembered, since a key
lost with Redis may be put back."""

from __future__ import annotations

from collections import OrderedDict

from slipway.domain.results import AttemptEnd

# how many ended attempts a manager remembers (a few dozen bytes each); an older one is
# still refused, by its job key being gone
ENDED_REMEMBERED = 20_000


class EndedJobs:
    def __init__(self, remembered: int = ENDED_REMEMBERED) -> None:
        self._remembered = remembered
        # job id -> how it ended, when this process knows (None: ended elsewhere)
        self._ended: OrderedDict[str, AttemptEnd | None] = OrderedDict()

    def add(self, job_id: str, outcome: AttemptEnd | None = None) -> None:
        if outcome is None and job_id in self._ended:
            return  # already known, perhaps with its outcome: keep it
        self._ended[job_id] = outcome
        self._ended.move_to_end(job_id)
        while len(self._ended) > self._remembered:
            self._ended.popitem(last=False)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ended

    def outcome(self, job_id: str) -> AttemptEnd | None:
        return self._ended.get(job_id)
