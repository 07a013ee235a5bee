"""Build records in SQL: create (in the caller's transaction, with its queue item and first
log entry: manager/admission.py), read, update."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Update, bindparam, select, update

from slipway.domain.attempts import load_attempts, stored_attempts
from slipway.domain.phases import ACTIVE_PHASES, Phase, sources_of
from slipway.domain.results import INITIAL_RETRIES
from slipway.store.build_changes import mark_changed
from slipway.store.database import Database, SqlConnection
from slipway.store.log_rows import BUILD_ID_PARAM, append_with, counted
from slipway.store.records import BuildRecord, LogEntry, NewBuild
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import builds as b
from slipway.store.secrets import BuildSecretStore

__all__ = ["BuildRecord", "BuildStore", "NewBuild"]


_FIELDS = [c.name for c in b.columns]


# reads by id, built once (hot paths)
_BY_ID = select(b).where(b.c.id == bindparam("build_id"))
_BY_IDS = select(b).where(b.c.id.in_(bindparam("build_ids", expanding=True)))


def _record(row: Any) -> BuildRecord:
    data = {name: row.get(name) for name in _FIELDS}
    data["phase"] = Phase(data["phase"])
    for name, empty in (("status", {}), ("build_args", {}), ("tags", []), ("options", {})):
        if data[name] is None:
            data[name] = empty
    data["attempts"] = load_attempts(data["attempts"])
    return BuildRecord(**data)


def _column_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as the columns store them (typed attempt records as their JSON)."""
    stored = dict(values)
    if "attempts" in stored:
        stored["attempts"] = stored_attempts(stored["attempts"])
    return stored


class BuildStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        conn: SqlConnection,
        new: NewBuild,
        *,
        retries: int = INITIAL_RETRIES,
        build_id: str | None = None,
    ) -> BuildRecord:
        """Store the record (phase `waiting`, a new id unless `build_id` is given: Quay
        mode keeps Quay's build uuid) in the caller's transaction."""
        build_id = build_id or str(uuid.uuid4())
        now = time.time() if new.submitted is None else min(new.submitted, time.time())
        values: dict[str, Any] = {
            "id": build_id,
            "namespace": new.namespace,
            "repository": new.repository,
            "phase": Phase.WAITING.value,
            "display_name": new.display_name or build_id[:7],
            "status": {},
            "subdirectory": new.subdirectory,
            "dockerfile_path": new.dockerfile_path,
            "context": new.context,
            "tags": list(new.tags),
            "manual_user": new.manual_user,
            "trigger": new.trigger,
            "trigger_metadata": new.trigger_metadata,
            "resource_key": new.resource_key,
            "archive_url": new.archive_url,
            "pull_robot": new.pull_robot,
            "pull_credentials": new.pull_credentials,
            "registry": new.registry,
            "build_args": dict(new.build_args),
            "target": new.target,
            "options": dict(new.options) or None,
            "retries_remaining": retries,
            "attempts": [],
            "log_count": 0,
            "started": now,
        }
        await conn.execute(b.insert().values(**values))
        return _record(values)

    @rerun_if_connection_lost
    async def get(self, build_id: str, conn: SqlConnection | None = None) -> BuildRecord | None:
        params = {"build_id": build_id}
        if conn is not None:
            row = (await conn.execute(_BY_ID, params)).first()
        else:
            async with self.db.lookup() as c:
                row = (await c.execute(_BY_ID, params)).first()
        return _record(row._mapping) if row else None

    @rerun_if_connection_lost
    async def get_many(self, build_ids: Sequence[str]) -> dict[str, BuildRecord]:
        if not build_ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(select(b).where(b.c.id.in_(list(build_ids))))
            return {r.id: _record(r._mapping) for r in rows.all()}

    @rerun_if_connection_lost
    async def get_each(self, build_ids: Sequence[str]) -> list[BuildRecord | None]:
        """One record (or None) per id, in order, from one query."""
        async with self.db.lookup() as conn:
            rows = await conn.execute(_BY_IDS, {"build_ids": list(set(build_ids))})
            found = {r.id: _record(r._mapping) for r in rows.all()}
        return [found.get(build_id) for build_id in build_ids]

    @rerun_if_connection_lost
    async def list_for_repository(
        self,
        namespace: str,
        repository: str,
        *,
        limit: int = 100,
        since: float | None = None,
        phases: Sequence[Phase] | None = None,
    ) -> list[BuildRecord]:
        stmt = select(b).where(b.c.namespace == namespace, b.c.repository == repository)
        if since is not None:
            stmt = stmt.where(b.c.started >= since)
        if phases is not None:
            stmt = stmt.where(b.c.phase.in_([p.value for p in phases]))
        stmt = stmt.order_by(b.c.started.desc(), b.c.id.desc()).limit(limit)
        async with self.db.read() as conn:
            return [_record(r._mapping) for r in (await conn.execute(stmt)).all()]

    @rerun_if_connection_lost
    async def find_by_id_prefix(
        self, namespace: str, repository: str, prefix: str, *, limit: int = 10
    ) -> list[BuildRecord]:
        """The repository's builds whose id starts with `prefix`, newest first: how a
        short id (the UI's and the CLI's first 8 characters) finds its build."""
        stmt = (
            select(b)
            .where(b.c.namespace == namespace, b.c.repository == repository,
                   b.c.id.startswith(prefix, autoescape=True))
            .order_by(b.c.started.desc(), b.c.id.desc())
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [_record(r._mapping) for r in (await conn.execute(stmt)).all()]

    @rerun_if_connection_lost
    async def list_in_phases(self, phases: Sequence[Phase]) -> list[BuildRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(b).where(b.c.phase.in_([p.value for p in phases])))
            return [_record(r._mapping) for r in rows.all()]

    async def update(self, conn: SqlConnection, build_id: str, **values: Any) -> None:
        if isinstance(values.get("phase"), Phase):
            values["phase"] = values["phase"].value
        mark_changed(build_id)
        await conn.execute(update(b).where(b.c.id == build_id).values(**_column_values(values)))

    async def move_phase(
        self,
        conn: SqlConnection,
        build_id: str,
        phase: Phase,
        *,
        log: Sequence[LogEntry] = (),
        secrets_stored: bool = True,
        **values: Any,
    ) -> bool:
        """Move the build to `phase` if the phase table allows it from the phase it is in
        (`phases.sources_of`, checked by the UPDATE itself: of two writers, a manager and
        the API or two managers, only one moves it); append `log` if it moved. A build
        that ends takes its secrets with it, in the same transaction;
        `secrets_stored=False`, from a caller that read the record and saw no secret ids
        in its options, saves that DELETE."""
        moved = await _update_and_log(conn, build_id, {"phase": phase.value, **values},
                                      log, phases=sources_of(phase))
        if moved and phase.is_final and secrets_stored:
            await BuildSecretStore.delete(conn, build_id)
        return moved

    async def update_if_job(
        self,
        conn: SqlConnection,
        build_id: str,
        job_id: str,
        *,
        log: Sequence[LogEntry] = (),
        **values: Any,
    ) -> bool:
        """Update only while attempt `job_id` owns the build and the build has not ended;
        append `log` if it did."""
        return await _update_and_log(conn, build_id, values, log, job_id=job_id,
                                     phases=ACTIVE_PHASES)


async def _update_and_log(
    conn: SqlConnection,
    build_id: str,
    values: Mapping[str, Any],
    log: Sequence[LogEntry],
    *,
    phases: frozenset[Phase] | None = None,
    job_id: str | None = None,
) -> bool:
    """Update one build, if its phase is one of `phases` / its attempt is `job_id`; if it
    matched, append `log`, numbered by that same UPDATE (one statement fewer than a
    separate append: these are the hot paths)."""
    mark_changed(build_id)
    statement = _guarded_update(phases, job_id is not None, tuple(values), bool(log))
    params = {f"set_{name}": value for name, value in _column_values(values).items()}
    params[BUILD_ID_PARAM] = build_id
    if job_id is not None:
        params["guard_job_id"] = job_id
    if not log:
        return bool((await conn.execute(statement, params)).rowcount)
    return await append_with(conn, build_id, statement, log, params) is not None


@functools.lru_cache(maxsize=256)
def _guarded_update(
    phases: frozenset[Phase] | None, by_job: bool, columns: tuple[str, ...], logged: bool
) -> Update:
    """The UPDATE of `_update_and_log`, its values bound by name, built once per shape:
    on the hot path, building a statement (and its cache key) per call costs more than
    running it."""
    statement = update(b).where(b.c.id == bindparam(BUILD_ID_PARAM))
    if phases is not None:
        statement = statement.where(b.c.phase.in_(sorted(p.value for p in phases)))
    if by_job:
        statement = statement.where(b.c.job_id == bindparam("guard_job_id"))
    sets: dict[str, Any] = {name: bindparam(f"set_{name}", type_=b.c[name].type)
                            for name in columns}
    return counted(statement.values(sets)) if logged else statement.values(sets)
