"""What the stores hold and hand out, whichever backend keeps it: build records, queue
items, log entries, uploads, API tokens, the overview's summaries. Plain data, no SQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slipway.domain.attempts import AttemptRecord
from slipway.domain.phases import Phase


@dataclass
class BuildRecord:
    id: str
    namespace: str
    repository: str
    phase: Phase
    tags: list[str]
    registry: str
    started: float
    retries_remaining: int
    display_name: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    subdirectory: str = ""
    dockerfile_path: str = "Dockerfile"
    context: str = ""
    manual_user: str | None = None
    trigger: dict[str, Any] | None = None
    trigger_metadata: dict[str, Any] | None = None
    resource_key: str | None = None
    archive_url: str | None = None
    pull_robot: str | None = None
    pull_credentials: dict[str, str] | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    # how the worker builds: {"no_cache": bool, "pull": bool, "labels": {name: value}}
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    image_digest: str | None = None
    executor: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    job_id: str | None = None
    log_count: int = 0
    completed: float | None = None
    # when its log moved to the log archive (store/log_archiving.py); None: not (yet)
    log_archived_at: float | None = None

    @property
    def full_repository(self) -> str:
        return f"{self.namespace}/{self.repository}"


@dataclass(frozen=True)
class NewBuild:
    namespace: str
    repository: str
    tags: Sequence[str]
    registry: str
    display_name: str = ""
    subdirectory: str = ""
    dockerfile_path: str = "Dockerfile"
    context: str = ""
    manual_user: str | None = None
    resource_key: str | None = None
    archive_url: str | None = None
    pull_robot: str | None = None
    pull_credentials: dict[str, str] | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    trigger_metadata: dict[str, Any] | None = None
    # when it was submitted (the request's arrival, its trace's start); None: now
    submitted: float | None = None


@dataclass(frozen=True)
class LogEntry:
    message: str
    type: str | None = None  # "command" | "phase" | "error" | None (plain output)
    data: dict[str, Any] = field(default_factory=dict)

    def as_api(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"message": self.message, "data": self.data}
        if self.type:
            entry["type"] = self.type
        return entry


@dataclass(frozen=True)
class QueueItem:
    id: int
    build_id: str
    namespace: str
    repository: str
    retries_remaining: int
    state_id: str
    processing_expires: float | None


@dataclass(frozen=True)
class WaitReason:
    """Why a queued build is not running yet, as far as the queue tells.

    kind: "retry" (its attempt failed; `until` is when it may run again), "repository"
    (`build_id`, of the same repository, runs or is ahead of it: one build per repository
    at a time), "namespace" (the namespace runs `limit` builds, its NAMESPACE_LIMITS),
    "workers" (`limit` workers, all busy) or "next" (it is next: a worker is being found)."""

    kind: str
    build_id: str | None = None
    running: bool = False
    until: float | None = None
    limit: int | None = None


class RoundRobin:
    """Remembers which namespace was served last so the next claim starts after it."""

    def __init__(self) -> None:
        self.last: str | None = None


@dataclass(frozen=True)
class RepositorySummary:
    namespace: str
    name: str
    build_count: int
    active_builds: int
    last_build: BuildRecord | None


@dataclass(frozen=True)
class NamespaceQueue:
    namespace: str
    waiting: int  # may be claimed now
    retrying: int  # back in the queue, waiting for RETRY_AFTER
    running: int  # claimed by a manager


@dataclass
class FailureGroup:
    reason: str  # an AttemptEnd value
    count: int = 0
    last: float = 0.0
    executors: Counter[str] = field(default_factory=Counter)
    example: dict[str, Any] = field(default_factory=dict)  # the newest failed attempt's build
    # the newest failed attempts (at most RECENT_PER_REASON of store/overview.py), newest
    # first: each its build, as `example`, and `ended`
    recent: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    """An uploaded build context: `path` and `size` are set once its file is in."""

    file_id: str
    mime_type: str
    path: Path | None
    size: int | None

    @property
    def complete(self) -> bool:
        return self.path is not None and self.size is not None


# a token's `last_used` is written when it is older than this: one write a minute per
# busy token, not one per request
LAST_USED_STEP_S = 60.0


@dataclass(frozen=True)
class StoredToken:
    """An API token as stored: its name and its scopes as written (never the token), and
    what docs/access.md lists of it (times are UNIX seconds; None: never)."""

    name: str
    scopes: dict[str, str]
    id: str = ""
    created_by: str | None = None
    creator_id: str | None = None
    created: float = 0.0
    expires: float | None = None
    revoked: float | None = None
    last_used: float | None = None

    def usable(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


@dataclass(frozen=True)
class AuditEntry:
    """One action of the audit log (store/audit.py): who, what, on which namespace and
    object, from where; `details` never holds a secret."""

    at: float
    actor: str
    action: str
    namespace: str | None = None
    target: str | None = None
    source: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "action": self.action,
                "namespace": self.namespace, "target": self.target,
                "source": self.source, "details": dict(self.details)}


@dataclass(frozen=True)
class AuditQuery:
    """A filter of the audit log: each given part must match; `namespaces`: only these
    (None: all); `after_id`: the page after that entry (oldest first)."""

    namespace: str | None = None
    actor: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    namespaces: frozenset[str] | None = None
    after_id: int = 0
    limit: int = 100


@dataclass
class HousekeepingReport:
    """What a pass removed (or, dry, would remove). Bytes a dry run cannot know before
    doing it (the size of an archive object not yet written, the pages SQLite gives back)
    are 0 then."""

    dry_run: bool = False
    logs_archived: int = 0
    log_lines_archived: int = 0
    archive_bytes_written: int = 0
    logs_left: int = 0  # could not be archived this time (the storage, a late entry)
    builds_deleted: int = 0
    log_lines_deleted: int = 0
    archives_deleted: int = 0
    archive_bytes_deleted: int = 0
    contexts_deleted: int = 0
    context_bytes_deleted: int = 0
    audit_entries_deleted: int = 0  # older than RETENTION.AUDIT_DAYS
    database_bytes_freed: int = 0
    database_size: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


@dataclass
class StoredTrigger:
    """A build trigger as kept (docs/triggers.md); its credentials are read apart."""

    id: str
    namespace: str
    repository: str
    name: str
    kind: str
    git_url: str
    enabled: bool
    spec: dict[str, Any]
    created: float
    updated: float
    next_run: float | None
    base_digests: dict[str, str]
    # which credentials are set (their values only through `credentials()`)
    credential_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TriggerDelivery:
    """What one webhook delivery (or scheduled run, or base-image build) did."""

    id: int
    trigger_id: str
    event: str
    received: float
    outcome: str
    reason: str
    ref: str | None
    commit_sha: str | None
    build_id: str | None


@dataclass(frozen=True)
class StatusRow:
    """A build's commit status: the state last posted and the tries at the next one."""

    build_id: str
    trigger_id: str
    posted: str | None
    tries: int
