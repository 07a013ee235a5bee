"""Quay mode's `Store` (store/interfaces.py): the manager works on Quay's own build queue
(`queueitem`), build rows (`repositorybuild`) and build logs (BUILDLOGS_REDIS), as Quay's
build manager does (docs/quay-contract.md).

- **Queue**: `QuayQueue` over `queueitem`, behind slipway's queue protocol. Quay's web
  app cannot notify a listener, so the scheduler looks at the queue every
  POLL_INTERVAL_S (1 s) at most (`next_available_at` never answers later than that).
- **Build records**: slipway keeps, beside each Quay build it claims, a record of its
  own under the same uuid (`slipway_builds`): the attempts, the job, the log count. It
  is made from the `repositorybuild` row on the first claim. Every phase slipway writes
  is written to `repositorybuild.phase` in the same transaction, the way Quay's manager
  writes it (`update_phase_then_close`: only a move domain/phases.py allows, so never
  over `cancelled`).
- **Logs**: slipway's log rows stay the manager's and the API's source; `QuayMirror`
  copies every new entry to `builds/<uuid>/logs` in BUILDLOGS_REDIS (Quay's shape), and
  sees a cancel written by Quay's API (the phase `cancelled`) for the builds running.
- tokens, uploads, signing keys, secrets: slipway's own `slipway_*` tables in the same
  database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from slipway.config.models import AppConfig
from slipway.config.quay import driver_connect_args
from slipway.domain.phases import Phase
from slipway.domain.refusals import Refusal, Refused
from slipway.domain.results import INITIAL_RETRIES
from slipway.quay.buildlogs import QuayBuildLogs, logs_key, parse_entry
from slipway.quay.buildpack import dockerfile_args
from slipway.quay.builds import (
    BUILDING,
    CANCELLED,
    COMPLETE,
    ERROR,
    INTERNAL_ERROR,
    TERMINAL_PHASES,
    QuayBuild,
    QuayBuilds,
)
from slipway.quay.errors import QuayModeError
from slipway.quay.notifications import QuayNotifications, Site
from slipway.quay.queue import POLL_INTERVAL_S, QuayQueue, QuayQueueItem
from slipway.quay.tables import queueitem, repositorybuild
from slipway.quay.userfiles import LocalUserFiles, UserFiles, userfiles_from_config
from slipway.store.api_tokens import ApiTokenStore
from slipway.store.attestations import AttestationStore
from slipway.store.audit import AuditLogStore
from slipway.store.build_changes import BuildChanges
from slipway.store.builds import BuildStore
from slipway.store.database import Database, SqlConnection
from slipway.store.interfaces import Store
from slipway.store.keys import SigningKeyStore
from slipway.store.logs import BuildLogs
from slipway.store.overview import BuildOverview
from slipway.store.records import (
    BuildRecord,
    LogEntry,
    NewBuild,
    QueueItem,
    RoundRobin,
    Upload,
    WaitReason,
)
from slipway.store.secrets import BuildSecretStore
from slipway.store.shared_transactions import SharedTransactions
from slipway.store.traces import MemoryTraceStore
from slipway.store.uploads import UploadStore

log = logging.getLogger("slipway.quay")

# how far a lease must move for slipway to write it (Quay's own manager: 20 s)
LEASE_MINIMUM_EXTENSION_S = 1.0

QUAY_STARTS_BUILDS = (
    "slipway serves the builds of a Quay here (Quay mode): start builds through Quay (its "
    "UI, API or build triggers), which writes the build and its queue item slipway builds "
    "from"
)


def _queue_item(item: QuayQueueItem) -> QueueItem:
    name = item.repository.split("/", 1)[1]
    return QueueItem(id=item.id, build_id=item.build_id, namespace=item.namespace,
                     repository=name, retries_remaining=item.retries_remaining,
                     state_id=item.state_id, processing_expires=item.processing_expires)


def new_build_of(build: QuayBuild, pull_credentials: dict[str, str] | None,
                 registry: str) -> NewBuild:
    """slipway's record of a Quay build: what the worker is handed (BuildPack) comes
    from it, as Quay's manager takes it from the row (quay/buildpack.py)."""
    context, dockerfile_path = dockerfile_args(build.job_config)
    trigger = None
    if build.trigger is not None:
        trigger = {"uuid": build.trigger.uuid, "service": build.trigger.service,
                   "id": build.trigger.id,
                   "deploy_key": build.trigger.secure_private_key is not None}
    return NewBuild(
        namespace=build.namespace, repository=build.name, tags=build.tags,
        registry=registry, display_name=build.display_name,
        subdirectory=str(build.job_config.get("build_subdir") or ""),
        dockerfile_path=dockerfile_path or "Dockerfile", context=context,
        manual_user=build.job_config.get("manual_user"), resource_key=build.resource_key,
        archive_url=build.job_config.get("archive_url") or None,
        pull_robot=build.pull_robot, pull_credentials=pull_credentials, trigger=trigger,
        trigger_metadata=build.trigger_metadata or None,
    )


def record_of(build: QuayBuild, registry: str) -> BuildRecord:
    """A read-only view of a Quay build slipway has no record of (waiting in Quay's queue,
    or built before slipway took over), for slipway's API."""
    new = new_build_of(build, None, registry)
    return BuildRecord(
        id=build.uuid, namespace=build.namespace, repository=build.name,
        phase=Phase(build.phase), tags=list(new.tags), registry=registry,
        started=build.started.timestamp(), retries_remaining=0,
        display_name=build.display_name, subdirectory=new.subdirectory,
        dockerfile_path=new.dockerfile_path, context=new.context,
        manual_user=new.manual_user, trigger=new.trigger,
        trigger_metadata=new.trigger_metadata, resource_key=build.resource_key,
        archive_url=new.archive_url, pull_robot=build.pull_robot,
    )


class QuayBuildQueue:
    """slipway's queue protocol over Quay's `queueitem` (quay/queue.py)."""

    def __init__(self, store: QuayStore) -> None:
        self.store = store
        self.quay = store.quay_queue
        # what this process claimed (Quay's table has no column for the claimer)
        self._claimed: dict[int, QueueItem] = {}

    async def put(self, conn: SqlConnection, build_id: str, namespace: str,
                  repository: str, *, retries_remaining: int = INITIAL_RETRIES,
                  available_after: float | None = None,
                  start_within: float | None = None) -> None:
        raise QuayModeError(QUAY_STARTS_BUILDS)

    # QUEUE_TTL does not apply to Quay's queue: Quay writes its items and their times
    # (available_after, processing_expires), and a build it queued is Quay's to expire
    async def due_to_expire(self, now: float, limit: int) -> list[QueueItem]:
        return []

    async def expire(self, conn: SqlConnection, item_id: int, now: float) -> bool:
        return False

    async def claim(
        self,
        manager_id: str,
        *,
        limit: int,
        lease_seconds: float,
        namespace_limits: Mapping[str, int] | None = None,
        round_robin: RoundRobin | None = None,
    ) -> list[QueueItem]:
        # Quay's table has no column for the claimer, and Quay's order is by id: neither
        # `manager_id` nor `round_robin` has a part in Quay's claim
        items = await self.quay.claim(limit=limit, lease_seconds=lease_seconds,
                                      namespace_limits=namespace_limits)
        claimed: list[QueueItem] = []
        for item in await self.store.adopt(items):
            queue_item = _queue_item(item)
            self._claimed[item.id] = queue_item
            claimed.append(queue_item)
        return claimed

    async def next_available_at(self, after: float) -> float | None:
        # nothing tells slipway of Quay's new items: look again within POLL_INTERVAL_S
        upcoming = await self.quay.next_available_at(after)
        poll = time.time() + POLL_INTERVAL_S
        return poll if upcoming is None else min(upcoming, poll)

    async def extend_processing_many(
        self, leases: list[tuple[int, float]], conn: SqlConnection | None = None
    ) -> list[bool]:
        # Not Quay's 20 s minimum extension: with a short HEARTBEAT_EXPIRY the heartbeats
        # push a lease to less than 20 s ahead, and those pushes must not be dropped.
        # The heartbeats already push a lease out only every HEARTBEAT_EXPIRY / 2.
        return await self.quay.extend_processing_many(
            leases, conn, minimum_extension=LEASE_MINIMUM_EXTENSION_S)

    async def incomplete(self, conn: SqlConnection, item_id: int, *,
                         restore_retry: bool = False, retry_after: float = 0.0) -> None:
        # the protocol's default, as slipway's tables have it: available again at once
        # (Quay's own incomplete waits 300 s; the manager gives RETRY_AFTER when it wants one)
        self._claimed.pop(item_id, None)
        await self.quay.incomplete(conn, item_id, restore_retry=restore_retry,
                                   retry_after=retry_after)

    async def complete(self, conn: SqlConnection, item_id: int) -> None:
        self._claimed.pop(item_id, None)
        await self.quay.complete(conn, item_id)

    async def _queue_id(self, build_id: str, conn: SqlConnection | None = None) -> int | None:
        query = (repositorybuild.select().with_only_columns(repositorybuild.c.queue_id)
                 .where(repositorybuild.c.uuid == build_id).order_by(repositorybuild.c.id)
                 .limit(1))
        if conn is None:
            async with self.store.db.read() as own:
                value = await own.scalar(query)
        else:
            value = await conn.scalar(query)
        try:
            return None if value is None else int(value)
        except ValueError:
            return None

    async def remove_for_build(self, conn: SqlConnection, build_id: str) -> bool:
        item_id = await self._queue_id(build_id, conn)
        if item_id is None:
            return False
        self._claimed.pop(item_id, None)
        return await self.quay.complete(conn, item_id)

    async def get_for_build(self, build_id: str) -> QueueItem | None:
        item_id = await self._queue_id(build_id)
        row = None if item_id is None else await self.quay.get(item_id)
        if row is None:
            return None
        namespace, name = self.quay.split_name(str(row["queue_name"]))
        expires = row["processing_expires"]
        return QueueItem(
            id=int(row["id"]), build_id=build_id, namespace=namespace, repository=name,
            retries_remaining=int(row["retries_remaining"]), state_id=str(row["state_id"]),
            processing_expires=None if expires is None
            else expires.replace(tzinfo=dt.UTC).timestamp(),
        )

    async def count_queued(self, namespace: str) -> int:
        return await self.quay.num_alive_jobs(namespace)

    async def why_waiting(
        self,
        build_ids: list[str],
        *,
        namespace_limits: Mapping[str, int] | None = None,
        workers_per_manager: int | None = None,
        conn: SqlConnection | None = None,
    ) -> dict[str, WaitReason]:
        return {}  # Quay's builds wait in Quay's queue; Quay's UI shows them `waiting`

    async def claimed_by(self, manager_id: str) -> list[QueueItem]:
        return list(self._claimed.values())


# slipway's phases are Quay's names (domain/phases.py); these never reach Quay's row
def _quay_phase(phase: Any) -> str | None:
    if phase is None:
        return None
    return Phase(phase).value


class QuayBuildRecords:
    """slipway's build records, each phase change also written to Quay's
    `repositorybuild.phase` in the same transaction (quay/builds.py
    update_phase_then_close)."""

    def __init__(self, records: BuildStore, quay_builds: QuayBuilds,
                 events: BuildEvents | None = None, *, registry: str = "") -> None:
        self.records = records
        self.quay_builds = quay_builds
        self.events = events
        self.registry = registry

    async def create(self, conn: SqlConnection, new: NewBuild, *, retries: int = INITIAL_RETRIES
                     ) -> BuildRecord:
        raise Refused(Refusal.DISABLED, QUAY_STARTS_BUILDS)

    async def get(self, build_id: str, conn: SqlConnection | None = None) -> BuildRecord | None:
        """slipway's record, else (a build slipway has not claimed) Quay's build as a
        read-only record."""
        record = await self.records.get(build_id, conn)
        if record is not None:
            return record
        build = await self.quay_builds.get(build_id, conn)
        return None if build is None else record_of(build, self.registry)

    async def get_many(self, build_ids: Sequence[str]) -> dict[str, BuildRecord]:
        found = await self.records.get_many(build_ids)
        rest = [b for b in build_ids if b not in found]
        if rest:
            for uuid_, build in (await self.quay_builds.get_many(rest)).items():
                found[uuid_] = record_of(build, self.registry)
        return found

    async def get_each(self, build_ids: Sequence[str]) -> list[BuildRecord | None]:
        return await self.records.get_each(build_ids)

    async def list_for_repository(self, namespace: str, repository: str, *, limit: int = 100,
                                  since: float | None = None,
                                  phases: Sequence[Phase] | None = None) -> list[BuildRecord]:
        """slipway's records and, for the builds it has none of, Quay's: newest first."""
        ours = await self.records.list_for_repository(namespace, repository, limit=limit,
                                                      since=since, phases=phases)
        after = None if since is None else dt.datetime.fromtimestamp(since)
        known = {r.id for r in ours}
        wanted = None if phases is None else {Phase(p).value for p in phases}
        theirs = [
            record_of(build, self.registry)
            for build in await self.quay_builds.list_for_repository(
                namespace, repository, limit=limit, since=after)
            if build.uuid not in known and (wanted is None or build.phase in wanted)
        ]
        merged = sorted([*ours, *theirs], key=lambda r: (r.started, r.id), reverse=True)
        return merged[:limit]

    async def list_in_phases(self, phases: Sequence[Phase]) -> list[BuildRecord]:
        return await self.records.list_in_phases(phases)

    async def find_by_id_prefix(self, namespace: str, repository: str, prefix: str, *,
                                limit: int = 10) -> list[BuildRecord]:
        """slipway's records and, for the builds it has none of, Quay's: newest first."""
        ours = await self.records.find_by_id_prefix(namespace, repository, prefix, limit=limit)
        known = {r.id for r in ours}
        theirs = [record_of(build, self.registry)
                  for build in await self.quay_builds.with_uuid_prefix(
                      namespace, repository, prefix, limit=limit)
                  if build.uuid not in known]
        merged = sorted([*ours, *theirs], key=lambda r: (r.started, r.id), reverse=True)
        return merged[:limit]

    async def _mirror(self, conn: SqlConnection, build_id: str, phase: Any,
                      values: Mapping[str, Any]) -> None:
        quay_phase = _quay_phase(phase)
        if quay_phase is None:
            return
        moved = await self.quay_builds.update_phase_then_close(build_id, quay_phase, conn)
        if moved and self.events is not None:
            await self.events.phase_moved(conn, build_id, quay_phase, values)

    async def update(self, conn: SqlConnection, build_id: str, **values: Any) -> None:
        await self.records.update(conn, build_id, **values)
        await self._mirror(conn, build_id, values.get("phase"), values)

    async def move_phase(self, conn: SqlConnection, build_id: str, phase: Phase, *,
                         log: Sequence[LogEntry] = (), secrets_stored: bool = True,
                         **values: Any) -> bool:
        moved = await self.records.move_phase(conn, build_id, phase, log=log,
                                              secrets_stored=secrets_stored, **values)
        if moved:
            await self._mirror(conn, build_id, phase, values)
        elif phase is Phase.CANCELLED and await self.records.get(build_id, conn) is None:
            return await self._cancel_in_quay(conn, build_id)
        return moved

    async def _cancel_in_quay(self, conn: SqlConnection, build_id: str) -> bool:
        """A cancel through slipway's API of a build slipway has not claimed: as Quay's
        API cancels a waiting build (its queue item deleted, the phase `cancelled`)."""
        build = await self.quay_builds.get(build_id, conn)
        if build is None or build.phase != Phase.WAITING.value:
            return False
        if build.queue_id is not None and build.queue_id.isdigit():
            await conn.execute(queueitem.delete().where(queueitem.c.id == int(build.queue_id)))
        return await self.quay_builds.update_phase_then_close(build_id, CANCELLED, conn)

    async def update_if_job(self, conn: SqlConnection, build_id: str, job_id: str, *,
                            log: Sequence[LogEntry] = (), **values: Any) -> bool:
        done = await self.records.update_if_job(conn, build_id, job_id, log=log, **values)
        if done:
            await self._mirror(conn, build_id, values.get("phase"), values)
        return done


class BuildEvents:
    """What Quay's build manager does when a build's phase moves, besides the phase:
    repository notifications (build_start on `building`, build_success, build_failure:
    quay/notifications.py; Quay's notification worker delivers them) and, when a
    triggered build ends, the trigger's failure counters (which may disable it)."""

    def __init__(self, config: AppConfig, quay_builds: QuayBuilds,
                 notifications: QuayNotifications) -> None:
        self.config = config
        self.quay_builds = quay_builds
        self.notifications = notifications

    async def phase_moved(self, conn: SqlConnection, build_id: str, phase: str,
                          values: Mapping[str, Any]) -> None:
        event = _EVENTS.get(phase)
        if event is None:
            return
        build = await self.quay_builds.get(build_id, conn)
        if build is None:
            return
        digest = values.get("image_digest")
        digests = None
        if digest:
            digests = [f"{self.config.SERVER_HOSTNAME}/{build.repository}@{digest}"]
        await self.notifications.send_for_build(
            build, event, conn=conn,
            error_message=values.get("error") if event == "build_failure" else None,
            image_id=digest or None, manifest_digests=digests,
        )
        if build.trigger is not None and phase != BUILDING:
            await self.quay_builds.update_trigger_disable_status(
                build.trigger.id, phase,
                failure_threshold=self.config.SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD,
                internal_error_threshold=(
                    self.config.SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD),
                conn=conn,
            )


# the notification event of each phase Quay's build manager raises one on
_EVENTS = {BUILDING: "build_start", COMPLETE: "build_success", ERROR: "build_failure",
           INTERNAL_ERROR: "build_failure"}


def shown_database(db_uri: str) -> str:
    """`host/name` of DB_URI (never its user or password)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_uri)
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"{host}{port}/{url.database or ''}"


class QuayLogs:
    """slipway's log of the builds it has a record of; Quay's log in BUILDLOGS_REDIS for
    the others (waiting, or built before slipway took over), for slipway's API."""

    def __init__(self, logs: BuildLogs, records: BuildStore, quay_logs: QuayBuildLogs) -> None:
        self.logs = logs
        self.records = records
        self.quay_logs = quay_logs

    async def append(self, build_id: str, entries: Sequence[LogEntry],
                     conn: SqlConnection | None = None) -> int:
        return await self.logs.append(build_id, entries, conn)

    async def _ours(self, build_id: str) -> bool:
        return await self.records.get(build_id) is not None

    async def count(self, build_id: str, conn: SqlConnection | None = None) -> int:
        if conn is not None or await self._ours(build_id):
            return await self.logs.count(build_id, conn)
        return await self.quay_logs.count(build_id)

    async def read(self, build_id: str, start: int = 0, limit: int | None = None
                   ) -> tuple[int, list[LogEntry]]:
        if await self._ours(build_id):
            return await self.logs.read(build_id, start, limit)
        return await self.quay_logs.read(build_id, start, limit)


class QuayUploads:
    """slipway's uploads, and (QUAY_USERFILES_SOURCE mount) the user files of Quay's
    LocalStorage mounted here, which slipway's file-drop route then serves to workers
    by signed link."""

    def __init__(self, uploads: UploadStore, store: QuayStore) -> None:
        self.uploads = uploads
        self.store = store

    async def create(self, mime_type: str, namespace: str | None) -> str:
        return await self.uploads.create(mime_type, namespace)

    async def received(self, file_id: str, path: Path, size: int) -> None:
        await self.uploads.received(file_id, path, size)

    async def get(self, file_id: str) -> Upload | None:
        found = await self.uploads.get(file_id)
        userfiles = self.store.userfiles
        if found is not None or not isinstance(userfiles, LocalUserFiles):
            return found
        if not userfiles.mounted or file_id != os.path.basename(file_id):
            return None
        path = userfiles.local_path(file_id)
        try:
            stat = await asyncio.to_thread(path.stat)
        except OSError:
            return None
        if not path.is_file():
            return None
        return Upload(file_id=file_id, mime_type="application/octet-stream", path=path,
                      size=stat.st_size)


class QuayStore:
    """The Store of Quay mode; `open()` checks BUILDLOGS_REDIS and the user-file
    storage, and adds slipway's own tables beside Quay's."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.db = Database(config.DB_URI,
                           connect_args=driver_connect_args(config.DB_CONNECTION_ARGS))
        self.quay_queue = QuayQueue(self.db, config.DOCKERFILE_BUILD_QUEUE_NAME)
        self.quay_builds = QuayBuilds(self.db)
        self.quay_logs = QuayBuildLogs(config.BUILDLOGS_REDIS)
        self.records = BuildStore(self.db)
        self.queue = QuayBuildQueue(self)
        site = Site(config.PREFERRED_URL_SCHEME, config.SERVER_HOSTNAME)
        notifications = QuayNotifications(self.db, site, config.NOTIFICATION_QUEUE_NAME)
        self.builds = QuayBuildRecords(
            self.records, self.quay_builds,
            BuildEvents(config, self.quay_builds, notifications),
            registry=config.SERVER_HOSTNAME)
        self.logs = QuayLogs(BuildLogs(self.db), self.records, self.quay_logs)
        self.tokens = ApiTokenStore(self.db)
        self.audit = AuditLogStore(self.db)
        self.uploads = QuayUploads(UploadStore(self.db), self)
        self.keys = SigningKeyStore(self.db)
        self.overview = BuildOverview(self.db)
        self.secrets = BuildSecretStore(self.db)
        # Quay mode: the attestations are in Quay's repository only (docs/signing.md)
        self.attestations: AttestationStore | None = None
        # traces in memory: Quay's database gets no table of them (docs/traces.md)
        self.traces = MemoryTraceStore()
        self.userfiles: UserFiles | None = None

    @property
    def changes(self) -> BuildChanges:
        return self.db.changes

    @property
    def shares_lookups(self) -> bool:
        return True

    def write(self) -> AbstractAsyncContextManager[SqlConnection]:
        return self.db.write()

    def shared_writes(self) -> SharedTransactions:
        return SharedTransactions(self.db, self.queue)

    async def open(self, *, link: Callable[[str], str] | None = None) -> QuayStore:
        """QuayModeError (naming the key) when BUILDLOGS_REDIS does not answer or the
        storage of USERFILES_LOCATION has a driver slipway cannot use. `link(file_id)`:
        slipway's own signed URL of a user file, for QUAY_USERFILES_SOURCE mount (the
        file is then read from the mounted storage)."""
        await self.quay_logs.check()
        self.userfiles = userfiles_from_config(self.config, link=link)
        await self.userfiles.check()
        await self.db.migrate()
        return self

    async def ping(self) -> bool:
        return await self.db.ping()

    async def close(self) -> None:
        await self.quay_logs.close()
        await self.db.close()

    # --- Quay's builds --------------------------------------------------------------

    async def adopt(self, items: Sequence[QuayQueueItem]) -> list[QuayQueueItem]:
        """Make slipway's record of the build of each claimed item (once, all in one
        transaction); the items to build. An item whose build is gone or already over is
        completed (Quay's manager drops those too)."""
        if not items:
            return []
        builds = await self.quay_builds.get_many([item.build_id for item in items])
        known = await self.records.get_many([item.build_id for item in items])
        # what Quay's own manager logged of a build it began (before the switch): the
        # start of slipway's log too, so the mirror appends after it (quay/mirror.py)
        earlier = await self._earlier_logs([u for u in builds if u not in known])
        kept: list[QuayQueueItem] = []
        async with self.db.write() as conn:
            for item in items:
                build = builds.get(item.build_id)
                if build is None or build.phase in TERMINAL_PHASES:
                    log.info("queue item %s: build %s is %s; the item is removed", item.id,
                             item.build_id, "gone" if build is None else build.phase)
                    await self.quay_queue.complete(conn, item.id)
                    continue
                kept.append(item)
                if build.uuid in known:
                    continue
                new = new_build_of(build, item.pull_credentials, self.config.SERVER_HOSTNAME)
                await self.records.create(conn, new, retries=item.retries_remaining + 1,
                                          build_id=build.uuid)
                # Quay's own start time (naive local time, as Quay writes it)
                await self.records.update(conn, build.uuid,
                                          started=build.started.timestamp())
                if earlier.get(build.uuid):
                    await self.logs.append(build.uuid, earlier[build.uuid], conn)
        return kept

    async def _earlier_logs(self, build_uuids: Sequence[str]) -> dict[str, list[LogEntry]]:
        if not build_uuids:
            return {}
        pipe = self.quay_logs.redis.pipeline(transaction=False)
        for build_uuid in build_uuids:
            pipe.lrange(logs_key(build_uuid), 0, -1)
        found = await pipe.execute()
        return {u: [parse_entry(raw) for raw in entries]
                for u, entries in zip(build_uuids, found, strict=True) if entries}


def _is_a_store(store: QuayStore) -> Store[SqlConnection]:
    return store  # mypy checks here that QuayStore keeps the Store protocol


