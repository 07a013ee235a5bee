"""One attempt of a build as its record keeps it (`attempts` of a build in docs/api.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from slipway.domain.results import AttemptEnd


class AttemptRecord(BaseModel):
    """Started when its worker was; `ended` and `outcome` once it ended. `counted` is
    False only for an attempt that does not count against the build's tries (given back
    at a manager's shutdown); it is left out otherwise, as the API has always shown it."""

    # older records may carry keys this version does not know: kept, not dropped
    model_config = ConfigDict(frozen=True, extra="allow")

    attempt: int
    executor: str | None = None
    worker_id: str | None = None
    started: float
    ended: float | None = None
    outcome: AttemptEnd | None = None
    counted: bool | None = None

    @property
    def is_open(self) -> bool:
        return self.ended is None

    def closed(self, outcome: AttemptEnd, at: float, *, counted: bool = True) -> AttemptRecord:
        return self.model_copy(update={
            "ended": at, "outcome": outcome, "counted": None if counted else False,
        })

    def stored(self) -> dict[str, Any]:
        """The JSON the database column and the API hold (unset fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


def load_attempts(raw: Iterable[Mapping[str, Any]] | None) -> list[AttemptRecord]:
    return [AttemptRecord.model_validate(item) for item in raw or ()]


def stored_attempts(attempts: Iterable[AttemptRecord | Mapping[str, Any]]) -> list[Any]:
    """The column's JSON; plain mappings (written by tests playing the manager) as given."""
    return [a.stored() if isinstance(a, AttemptRecord) else dict(a) for a in attempts]
