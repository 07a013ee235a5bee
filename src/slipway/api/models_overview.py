"""Response bodies of slipway's listing and overview routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from slipway.api.models import BuildOut


class UserOut(BaseModel):
    """Quay's `GET /api/v1/user/` (its `anonymous` and `username`) plus the token's scopes."""

    anonymous: bool = False
    username: str = Field(description="the API token's name")
    scopes: dict[str, str] = Field(description='{namespace or "*": read | write | admin}')


class RepositoryOut(BaseModel):
    namespace: str
    name: str
    last_modified: float = Field(description="UNIX time the newest build was started")
    build_count: int
    active_builds: int = Field(description="builds not in a final phase")
    last_build: BuildOut | None


class RepositoryList(BaseModel):
    repositories: list[RepositoryOut]


class ExecutorWorkers(BaseModel):
    name: str = Field(description="the executor's NAME (null: the worker is being started)")
    executor: str | None = Field(description="its kind: local, kubernetes, ec2, ...")
    running: int = Field(description="builds holding a worker it started, every manager's")


class WorkersOut(BaseModel):
    allowed_worker_count: int | None = Field(
        description="ALLOWED_WORKER_COUNT: workers one manager process runs at once"
    )
    running: int
    by_executor: list[ExecutorWorkers]


class NamespaceQueueOut(BaseModel):
    namespace: str
    waiting: int = Field(description="queued, may be scheduled now")
    retrying: int = Field(description="back in the queue after a failed attempt (RETRY_AFTER)")
    running: int = Field(description="held by a manager")
    limit: int | None = Field(description="NAMESPACE_LIMITS: its concurrent builds, at most")


class FailureExample(BaseModel):
    id: str
    namespace: str
    repository: str
    phase: str
    error: str | None
    attempt: int | None


class FailedAttempt(FailureExample):
    executor: str | None = Field(description="the executor that ran the attempt")
    ended: float = Field(description="UNIX time the attempt ended")


FailureKind = Literal["user", "infrastructure"]


class FailureOut(BaseModel):
    reason: str = Field(description="the attempt's outcome, e.g. user_error, heartbeat_lost")
    kind: FailureKind = Field(description=(
        "user: the build's own failure (user_error: a Dockerfile step, the context, a base "
        "image, the push; the build ended `error`); infrastructure: every other outcome "
        "(the worker, the executor or the manager)"))
    description: str
    count: int
    last: float = Field(description="UNIX time of the newest")
    executors: dict[str, int]
    example: FailureExample = Field(description="the build of the newest")
    recent: list[FailedAttempt] = Field(
        description="the newest failed attempts of this reason, newest first (at most 10)")


class FailuresOut(BaseModel):
    since: float
    user_errors: int = Field(description="failed attempts of kind user")
    infrastructure_failures: int = Field(description="failed attempts of kind infrastructure")
    reasons: list[FailureOut]


class ManagerOut(BaseModel):
    builds_enabled: bool = Field(description="FEATURE_BUILD_SUPPORT, and a BUILD_MANAGER set")
    workers: WorkersOut
    queue: list[NamespaceQueueOut]
    failures: FailuresOut
