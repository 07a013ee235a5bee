"""The state of one build attempt as kept in the orchestrator (shared by all managers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class JobStage(StrEnum):
    SCHEDULING = "scheduling"  # claimed; executors being asked
    SCHEDULED = "scheduled"  # a worker was started; waiting for it to register
    RUNNING = "running"  # registered; heartbeating


@dataclass
class JobState:
    job_id: str
    build_id: str
    namespace: str
    queue_id: int
    manager_id: str
    retries_remaining: int
    attempt: int
    stage: JobStage = JobStage.SCHEDULING
    executor: str | None = None
    worker_id: str | None = None
    phase_seq: int = -1
    registered_at: float | None = None
    # the attempt's deadline (its deadline key's lifetime) and who set it
    # (domain/build_limits.py): known once its worker registers
    timeout: int | None = None
    timeout_set_by: str | None = None

    def dumps(self) -> str:
        # the fields are flat: vars() serialises as asdict() would, without its deep copy
        # (this runs several times per build)
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> JobState:
        data = json.loads(raw)
        data["stage"] = JobStage(data["stage"])
        return cls(**data)
