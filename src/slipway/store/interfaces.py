"""What the manager and the API ask of durable state, whichever backend keeps it.

Today's backend is slipway's own SQL tables (SQLite or PostgreSQL: `store/facade.py`);
Quay mode puts Quay's `queueitem` and `repositorybuild` tables and Quay's build-log Redis
behind the same protocols (docs/quay-contract.md). Nothing here knows SQL.

Writes that must land together (a build's record, queue item and first log entry; an
attempt's end) run in one `Store.write()` transaction, handed to each call as `conn`. What
a transaction is belongs to the backend (`Tx`): callers only pass it on. Callers that
must not know the backend type against `Store[Any]`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from slipway.domain.phases import Phase
from slipway.store.build_changes import BuildChanges
from slipway.store.records import (
    AuditEntry,
    AuditQuery,
    BuildRecord,
    FailureGroup,
    LogEntry,
    NamespaceQueue,
    NewBuild,
    QueueItem,
    RepositorySummary,
    RoundRobin,
    StatusRow,
    StoredToken,
    StoredTrigger,
    TriggerDelivery,
    Upload,
    WaitReason,
)

Tx = TypeVar("Tx")
Tx_contra = TypeVar("Tx_contra", contravariant=True)
R = TypeVar("R")


class BuildRecords(Protocol[Tx_contra]):
    """Build records: the parameters a build was started with, its phase and attempts."""

    async def create(self, conn: Tx_contra, new: NewBuild, *, retries: int = ...
                     ) -> BuildRecord:
        """Store a new record, phase `waiting`, in `conn`'s transaction."""

    async def get(self, build_id: str, conn: Tx_contra | None = None) -> BuildRecord | None:
        ...

    async def get_many(self, build_ids: Sequence[str]) -> dict[str, BuildRecord]:
        ...

    async def get_each(self, build_ids: Sequence[str]) -> list[BuildRecord | None]:
        """One record (or None) per id, in order."""

    async def list_for_repository(
        self,
        namespace: str,
        repository: str,
        *,
        limit: int = ...,
        since: float | None = ...,
        phases: Sequence[Phase] | None = ...,
    ) -> list[BuildRecord]:
        """Newest first."""

    async def find_by_id_prefix(
        self, namespace: str, repository: str, prefix: str, *, limit: int = ...
    ) -> list[BuildRecord]:
        """The repository's builds whose id starts with `prefix`, newest first."""

    async def list_in_phases(self, phases: Sequence[Phase]) -> list[BuildRecord]:
        ...

    async def update(self, conn: Tx_contra, build_id: str, **values: Any) -> None:
        ...

    async def move_phase(
        self,
        conn: Tx_contra,
        build_id: str,
        phase: Phase,
        *,
        log: Sequence[LogEntry] = ...,
        secrets_stored: bool = ...,
        **values: Any,
    ) -> bool:
        """The one way a build changes phase: move it to `phase` only from a phase the
        domain's table allows (`domain/phases.py` `sources_of(phase)`, compare-and-set);
        append `log` if it moved. A final phase deletes the build's secrets unless
        `secrets_stored` is False (the record has none)."""

    async def update_if_job(
        self,
        conn: Tx_contra,
        build_id: str,
        job_id: str,
        *,
        log: Sequence[LogEntry] = ...,
        **values: Any,
    ) -> bool:
        """Update only while attempt `job_id` owns the build and the build has not
        ended; append `log` if it did."""


class BuildQueue(Protocol[Tx_contra]):
    """The build queue, with Quay's WorkQueue semantics (leases, retries, one build per
    repository at a time, round robin across namespaces)."""

    async def put(
        self,
        conn: Tx_contra,
        build_id: str,
        namespace: str,
        repository: str,
        *,
        retries_remaining: int = ...,
        available_after: float | None = ...,
        start_within: float | None = ...,
    ) -> None:
        """Enqueue in `conn`'s transaction (with the build's record); `start_within`:
        the build expires unless an attempt is claimed within these seconds (QUEUE_TTL)."""

    async def claim(
        self,
        manager_id: str,
        *,
        limit: int,
        lease_seconds: float,
        namespace_limits: Mapping[str, int] | None = ...,
        round_robin: RoundRobin | None = ...,
    ) -> list[QueueItem]:
        ...

    async def next_available_at(self, after: float) -> float | None:
        ...

    async def extend_processing_many(
        self, leases: list[tuple[int, float]], conn: Tx_contra | None = ...
    ) -> list[bool]:
        """Push leases out (item id, seconds from now); for each, whether the item was
        still being processed."""

    async def incomplete(
        self,
        conn: Tx_contra,
        item_id: int,
        *,
        restore_retry: bool = ...,
        retry_after: float = ...,
    ) -> None:
        ...

    async def due_to_expire(self, now: float, limit: int) -> list[QueueItem]:
        """Items still waiting for their first attempt past their QUEUE_TTL."""

    async def expire(self, conn: Tx_contra, item_id: int, now: float) -> bool:
        """Remove such an item if it still is one; False when it started meanwhile."""

    async def complete(self, conn: Tx_contra, item_id: int) -> None:
        ...

    async def remove_for_build(self, conn: Tx_contra, build_id: str) -> bool:
        ...

    async def get_for_build(self, build_id: str) -> QueueItem | None:
        ...

    async def count_queued(self, namespace: str) -> int:
        ...

    async def why_waiting(
        self,
        build_ids: list[str],
        *,
        namespace_limits: Mapping[str, int] | None = ...,
        workers_per_manager: int | None = ...,
        conn: Tx_contra | None = ...,
    ) -> dict[str, WaitReason]:
        """Why each of these builds, if still queued, waits; in `conn`'s transaction
        when given."""

    async def claimed_by(self, manager_id: str) -> list[QueueItem]:
        ...


class BuildLogs(Protocol[Tx_contra]):
    """Append-only build logs, entries numbered from 0 in arrival order."""

    async def append(
        self, build_id: str, entries: Sequence[LogEntry], conn: Tx_contra | None = ...
    ) -> int:
        """Append in order (KeyError: no such build); the new total."""

    async def count(self, build_id: str, conn: Tx_contra | None = ...) -> int:
        ...

    async def read(
        self, build_id: str, start: int = ..., limit: int | None = ...
    ) -> tuple[int, list[LogEntry]]:
        """(total, entries from `start`)."""


class Tokens(Protocol):
    """API tokens, kept by their hash (api/auth.py hashes and checks them)."""

    async def add(self, token_hash: str, name: str, scopes: Mapping[str, str], *,
                  created_by: str | None = None, creator_id: str | None = None,
                  expires: float | None = None) -> StoredToken:
        ...

    async def find(self, token_hash: str) -> StoredToken | None:
        ...

    async def touch(self, token_id: str, now: float) -> None:
        """Note that the token was used at `now` (at most once a minute is written)."""

    async def list(self) -> list[StoredToken]:
        ...

    async def get(self, token_id: str) -> StoredToken | None:
        ...

    async def revoke(self, token_id: str, now: float) -> bool:
        """False when there is no such token, or it was revoked already."""

    async def any_stored(self) -> bool:
        ...


class AuditLog(Protocol):
    """The audit log: added to, read by filter, deleted only by retention."""

    async def record(self, entry: AuditEntry) -> None:
        ...

    async def query(self, q: AuditQuery) -> list[AuditEntry]:
        ...

    async def delete_before(self, cutoff: float, *, batch_size: int = ...,
                            pause: float = ...) -> int:
        ...


class Uploads(Protocol):
    """Uploaded build contexts (api/uploads.py receives their files)."""

    async def create(self, mime_type: str, namespace: str | None) -> str:
        """A new upload with no file yet; its file id."""

    async def get(self, file_id: str) -> Upload | None:
        ...

    async def received(self, file_id: str, path: Path, size: int) -> None:
        ...


class SigningKeys(Protocol):
    """The managers' public signing keys, by key id (tokens/)."""

    async def publish(self, kid: str, public_pem: str) -> None:
        ...

    async def get(self, kid: str) -> str | None:
        ...


class BuildSecrets(Protocol[Tx_contra]):
    """A build's secrets ({id: value}), kept encrypted until the build ends."""

    def unlock(self, key: bytes) -> None:
        """Encrypt and decrypt with `key` from now on (build_secrets.load_or_create_key)."""

    async def put(self, conn: Tx_contra, build_id: str, values: Mapping[str, str]) -> None:
        """Store them in the caller's transaction (the one creating the build)."""

    async def get(self, build_id: str) -> dict[str, str]:
        """{} when the build has none or has ended; SecretsUnavailable with another key."""


class Triggers(Protocol):
    """Build triggers (docs/triggers.md): slipway's own tables only (`store/triggers.py`);
    a store without them (Quay mode) has no `triggers` attribute."""

    async def create(self, namespace: str, repository: str, name: str, kind: str,
                     git_url: str, spec: Mapping[str, Any], credentials: Mapping[str, str],
                     next_run: float | None, enabled: bool = True) -> StoredTrigger: ...

    async def get(self, trigger_id: str) -> StoredTrigger | None: ...

    async def list_for_repository(self, namespace: str, repository: str
                                  ) -> list[StoredTrigger]: ...

    async def all_enabled(self) -> list[StoredTrigger]: ...

    async def credentials(self, trigger_id: str) -> dict[str, str]:
        """SecretsUnavailable when they were sealed with another key."""

    async def update(self, trigger_id: str, *, name: str, kind: str, git_url: str,
                     spec: Mapping[str, Any], enabled: bool,
                     credentials: Mapping[str, str], next_run: float | None) -> None:
        """TriggerNameTaken when another trigger of the repository has `name`."""

    async def delete(self, trigger_id: str) -> None: ...

    async def due_runs(self, now: float) -> list[StoredTrigger]: ...

    async def claim_run(self, trigger_id: str, due: float, following: float | None
                        ) -> bool: ...

    async def swap_base_digests(self, trigger_id: str, seen: Mapping[str, str],
                                now: Mapping[str, str]) -> bool: ...

    async def record_delivery(self, trigger_id: str, delivery_key: str | None, event: str,
                              outcome: str, reason: str, ref: str | None = None,
                              commit_sha: str | None = None,
                              build_id: str | None = None) -> int | None: ...

    async def finish_delivery(self, delivery_id: int, outcome: str, reason: str,
                              build_id: str | None) -> None: ...

    async def find_delivery(self, trigger_id: str, delivery_key: str
                            ) -> TriggerDelivery | None: ...

    async def deliveries(self, trigger_id: str, limit: int = 20
                         ) -> list[TriggerDelivery]: ...

    async def track_status(self, build_id: str, trigger_id: str) -> None: ...

    async def statuses_due(self, now: float, limit: int = 100) -> list[StatusRow]: ...

    async def claim_status(self, row: StatusRow, state: str, due_next: float,
                           now: float) -> bool: ...

    async def status_posted(self, build_id: str, state: str, final: bool,
                            now: float) -> None: ...

    async def status_failed(self, build_id: str, error: str, give_up: bool) -> None: ...

    async def status_of(self, build_id: str) -> dict[str, Any] | None: ...


def triggers_of(store: object) -> Triggers | None:
    """The store's triggers; None for a store without them (Quay mode)."""
    found: Triggers | None = getattr(store, "triggers", None)
    return found


class BuildTraces(Protocol):
    """Each build's trace: its span records (tracing/records.py), bounded in number."""

    async def append(self, spans: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        ...

    async def read(self, build_id: str) -> list[dict[str, Any]]:
        ...


class Overview(Protocol):
    """Reads across many builds, for listings and the state at a glance."""

    async def repositories(
        self, namespaces: Sequence[str] | None, *, limit: int = ...
    ) -> list[RepositorySummary]:
        ...

    async def workers_by_executor(self) -> dict[str | None, int]:
        ...

    async def queue_by_namespace(
        self, namespaces: Sequence[str] | None
    ) -> list[NamespaceQueue]:
        ...

    async def recent_failures(
        self, since: float, namespaces: Sequence[str] | None
    ) -> list[FailureGroup]:
        ...


class SharedTransaction(Protocol):
    """What a shared write gets besides being its backend's transaction: a lease push and
    log appends, which the backend may write once for all writes sharing it."""

    def extend_lease(self, item_id: int, seconds_from_now: float) -> None:
        ...

    def append_log(self, build_id: str, entries: Sequence[LogEntry]) -> None:
        ...


class SharedWrites(Protocol):
    """Short write transactions of the hot path; a backend may run those that arrive
    together as one transaction (PostgreSQL does)."""

    async def run(self, write: Callable[[Any], Awaitable[R]]) -> R:
        """`write(conn)` in a committed transaction, perhaps shared; its result. `conn` is
        the backend's transaction and a `SharedTransaction`."""

    async def close(self) -> None:
        """Fail the writes still waiting (the manager is stopping)."""


class Attestations(Protocol):
    """A build's signatures and attestations (store/attestations.py)."""

    async def put(self, build_id: str, document: dict[str, Any]) -> None: ...

    async def get(self, build_id: str) -> dict[str, Any] | None: ...


class Store(Protocol[Tx]):
    """Every store of one backend, and its transactions."""

    @property
    def builds(self) -> BuildRecords[Tx]: ...

    @property
    def queue(self) -> BuildQueue[Tx]: ...

    @property
    def logs(self) -> BuildLogs[Tx]: ...

    @property
    def tokens(self) -> Tokens: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def uploads(self) -> Uploads: ...

    @property
    def keys(self) -> SigningKeys: ...

    @property
    def overview(self) -> Overview: ...

    @property
    def secrets(self) -> BuildSecrets[Tx]: ...

    @property
    def attestations(self) -> Attestations | None:
        """None where the backend keeps none (Quay mode: they are in Quay's repository)."""

    @property
    def traces(self) -> BuildTraces: ...

    @property
    def changes(self) -> BuildChanges:
        """The builds this process's committed writes change, for watchers to wait on."""

    @property
    def shares_lookups(self) -> bool:
        """Whether reads by id that arrive together are worth one query for all (each is
        a round trip otherwise; on SQLite a read costs less than the wait)."""

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction, committed when the block ends without an exception."""

    def shared_writes(self) -> SharedWrites:
        """A new group of shared writes (one per manager, which closes it)."""

    async def open(self) -> Self:
        """Ready the backend (migrations); the store itself."""

    async def ping(self) -> bool:
        ...

    async def close(self) -> None:
        ...
