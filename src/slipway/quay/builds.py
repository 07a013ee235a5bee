"""Quay's build records: `repositorybuild` rows with what hangs on them (repository and
namespace, build token, trigger, pull robot), read and written as Quay's data/model/build.py
does. The encrypted columns (the token's code, the trigger's deploy key) are kept as
stored; `access_token` and `deploy_key` decrypt them with DATABASE_SECRET_KEY."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select, update

from slipway.domain.phases import Phase, sources_of
from slipway.quay.encryption import DecryptionFailure, FieldEncrypter
from slipway.quay.errors import QuayModeError
from slipway.quay.tables import (
    accesstoken,
    buildtriggerservice,
    disablereason,
    repository,
    repositorybuild,
    repositorybuildtrigger,
    user,
    utcnow,
)
from slipway.store.database import Database, SqlConnection

# data/database.py BUILD_PHASE
WAITING = "waiting"
BUILD_SCHEDULED = "build-scheduled"
UNPACKING = "unpacking"
PULLING = "pulling"
BUILDING = "building"
PUSHING = "pushing"
COMPLETE = "complete"
ERROR = "error"
INTERNAL_ERROR = "internalerror"
CANCELLED = "cancelled"
PHASES = (WAITING, BUILD_SCHEDULED, UNPACKING, PULLING, BUILDING, PUSHING, COMPLETE, ERROR,
          INTERNAL_ERROR, CANCELLED)
TERMINAL_PHASES = frozenset({COMPLETE, ERROR, INTERNAL_ERROR, CANCELLED})
# data/database.py TRIGGER_DISABLE_REASON
DISABLED_FOR_FAILURES = "successive_build_failures"
DISABLED_FOR_INTERNAL_ERRORS = "successive_build_internal_errors"


@dataclass(frozen=True)
class QuayTrigger:
    id: int
    uuid: str
    service: str  # buildtriggerservice.name: github, gitlab, bitbucket, custom-git
    enabled: bool
    secure_private_key: str | None = field(repr=False)  # encrypted, as stored


@dataclass(frozen=True)
class QuayBuild:
    id: int
    uuid: str
    namespace: str
    name: str
    phase: str
    started: dt.datetime  # naive local time, as Quay writes it
    display_name: str
    job_config: dict[str, Any]
    resource_key: str | None
    trigger: QuayTrigger | None
    pull_robot: str | None
    logs_archived: bool
    queue_id: str | None
    token_name: str = field(repr=False)
    token_code: str | None = field(repr=False)  # encrypted, as stored

    @property
    def repository(self) -> str:
        """`<namespace>/<name>`, the BuildPack's repository."""
        return f"{self.namespace}/{self.name}"

    @property
    def tags(self) -> list[str]:
        """job_config docker_tags, ["latest"] when absent (BuildJob)."""
        return list(self.job_config.get("docker_tags", ["latest"]))

    @property
    def trigger_metadata(self) -> dict[str, Any]:
        metadata = self.job_config.get("trigger_metadata")
        return dict(metadata) if isinstance(metadata, dict) else {}

    @property
    def git_url(self) -> str:
        """The trigger's repository, which the worker clones (trigger_metadata.git_url)."""
        return str(self.trigger_metadata.get("git_url", "") or "")

    @property
    def commit_sha(self) -> str:
        """The trigger's commit: `commit`, or the older `commit_sha` (BuildJob.commit_sha)."""
        metadata = self.trigger_metadata
        return str(metadata.get("commit", "") or metadata.get("commit_sha", "") or "")

    def access_token(self, encrypter: FieldEncrypter) -> str:
        """The build's access token as a credential (quay-builder pushes and pulls as
        `$token` with it): token_name followed by the decrypted token_code."""
        if self.token_code is None:
            raise QuayModeError(f"build {self.uuid}: its access token has no code")
        return self.token_name + _decrypted(encrypter, self.token_code, self.uuid, "token")

    def deploy_key(self, encrypter: FieldEncrypter) -> str | None:
        """The trigger's decrypted SSH deploy key, or None."""
        if self.trigger is None or self.trigger.secure_private_key is None:
            return None
        return _decrypted(encrypter, self.trigger.secure_private_key, self.uuid, "deploy key")


def _decrypted(encrypter: FieldEncrypter, value: str, build_uuid: str, what: str) -> str:
    try:
        return encrypter.decrypt(value)
    except DecryptionFailure as exc:
        raise QuayModeError(
            f"build {build_uuid}: its {what} cannot be decrypted: {exc}; set "
            "DATABASE_SECRET_KEY to the value in Quay's config.yaml"
        ) from None


_namespace = user.alias("namespace_user")
_robot = user.alias("pull_robot")


def _builds_query() -> Select[Any]:
    b, t = repositorybuild, repositorybuildtrigger
    return (
        select(
            b, repository.c.name.label("repo_name"), _namespace.c.username.label("ns_name"),
            accesstoken.c.token_name, accesstoken.c.token_code,
            t.c.uuid.label("trigger_uuid"), t.c.enabled.label("trigger_enabled"),
            t.c.secure_private_key, buildtriggerservice.c.name.label("trigger_service"),
            _robot.c.username.label("robot_name"),
        )
        .join(repository, repository.c.id == b.c.repository_id)
        .join(_namespace, _namespace.c.id == repository.c.namespace_user_id)
        .join(accesstoken, accesstoken.c.id == b.c.access_token_id)
        .outerjoin(t, t.c.id == b.c.trigger_id)
        .outerjoin(buildtriggerservice, buildtriggerservice.c.id == t.c.service_id)
        .outerjoin(_robot, _robot.c.id == b.c.pull_robot_id)
    )


def _build(row: Any) -> QuayBuild:
    try:
        job_config = json.loads(row.job_config)
    except ValueError:
        job_config = {}
    trigger = None
    if row.trigger_id is not None and row.trigger_uuid is not None:
        trigger = QuayTrigger(
            id=int(row.trigger_id), uuid=str(row.trigger_uuid),
            service=str(row.trigger_service or ""), enabled=bool(row.trigger_enabled),
            secure_private_key=row.secure_private_key,
        )
    return QuayBuild(
        id=int(row.id), uuid=str(row.uuid), namespace=str(row.ns_name), name=str(row.repo_name),
        phase=str(row.phase), started=row.started, display_name=str(row.display_name),
        job_config=job_config if isinstance(job_config, dict) else {},
        resource_key=row.resource_key, trigger=trigger, pull_robot=row.robot_name,
        logs_archived=bool(row.logs_archived), queue_id=row.queue_id,
        token_name=str(row.token_name), token_code=row.token_code,
    )


class QuayBuilds:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, build_uuid: str, conn: SqlConnection | None = None) -> QuayBuild | None:
        """The build of `build_uuid` (Quay's get_repository_build), or None."""
        query = _builds_query().where(repositorybuild.c.uuid == build_uuid)
        query = query.order_by(repositorybuild.c.id).limit(1)
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self.db.read() as own:
                row = (await own.execute(query)).first()
        return _build(row) if row else None

    async def get_many(self, build_uuids: Sequence[str]) -> dict[str, QuayBuild]:
        """The builds of `build_uuids` that exist, by uuid, in one query (the first row
        of a uuid, as get())."""
        if not build_uuids:
            return {}
        query = (_builds_query().where(repositorybuild.c.uuid.in_(sorted(set(build_uuids))))
                 .order_by(repositorybuild.c.id.desc()))
        async with self.db.read() as conn:
            return {build.uuid: build for build in map(_build, (await conn.execute(query)).all())}

    async def list_for_repository(
        self, namespace: str, name: str, *, limit: int = 100, since: dt.datetime | None = None
    ) -> list[QuayBuild]:
        """A repository's builds, the newest first (Quay's list_repository_builds)."""
        query = _builds_query().where(_namespace.c.username == namespace,
                                      repository.c.name == name)
        if since is not None:
            query = query.where(repositorybuild.c.started >= since)
        query = query.order_by(repositorybuild.c.started.desc()).limit(limit)
        async with self.db.read() as conn:
            return [_build(row) for row in (await conn.execute(query)).all()]

    async def with_uuid_prefix(
        self, namespace: str, name: str, prefix: str, *, limit: int = 10
    ) -> list[QuayBuild]:
        """A repository's builds whose uuid starts with `prefix`, the newest first (what
        a short build id names)."""
        query = _builds_query().where(_namespace.c.username == namespace,
                                      repository.c.name == name,
                                      repositorybuild.c.uuid.startswith(prefix, autoescape=True))
        query = query.order_by(repositorybuild.c.started.desc()).limit(limit)
        async with self.db.read() as conn:
            return [_build(row) for row in (await conn.execute(query)).all()]

    async def phases(self, build_uuids: Sequence[str]) -> dict[str, str]:
        """The phase of each build that exists, in one query: how a manager sees a cancel
        from Quay (the phase becomes `cancelled`, spec §6)."""
        if not build_uuids:
            return {}
        b = repositorybuild
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(b.c.uuid, b.c.phase).where(b.c.uuid.in_(sorted(set(build_uuids))))
                .order_by(b.c.id.desc())
            )
            # a uuid is not unique in Quay's schema: the first row wins, as in get()
            return {str(u): str(p) for u, p in rows.all()}

    async def update_phase_then_close(
        self, build_uuid: str, phase: str, conn: SqlConnection | None = None
    ) -> bool:
        """Quay's phase writer, held to slipway's phase table: the row moves only from a
        phase `domain/phases.py` allows towards `phase` (so never from `cancelled`, nor
        from any final phase), and only from the phase just read (so of two writers only
        one moves it). Whether the row changed."""
        if phase not in PHASES:
            raise ValueError(f"{phase!r} is not one of Quay's build phases: {', '.join(PHASES)}")
        if conn is None:
            async with self.db.write() as own:
                return await self.update_phase_then_close(build_uuid, phase, own)
        b = repositorybuild
        row = (await conn.execute(
            select(b.c.id, b.c.phase).where(b.c.uuid == build_uuid).order_by(b.c.id).limit(1)
        )).first()
        if row is None or row.phase not in {p.value for p in sources_of(Phase(phase))}:
            return False
        result = await conn.execute(
            update(b).where(b.c.id == row.id, b.c.phase == row.phase).values(phase=phase)
        )
        return bool(result.rowcount)

    async def update_trigger_disable_status(
        self,
        trigger_id: int,
        final_phase: str,
        *,
        failure_threshold: int | None,
        internal_error_threshold: int | None,
        conn: SqlConnection | None = None,
    ) -> None:
        """Quay's update_trigger_disable_status: `complete` resets both counters, `error`
        counts a failure (and resets the internal-error count), `internalerror` counts an
        internal error; a count reaching its threshold (SUCCESSIVE_TRIGGER_*) disables
        the trigger with the reason and time. A deleted trigger is left alone."""
        if conn is None:
            async with self.db.write() as own:
                return await self.update_trigger_disable_status(
                    trigger_id, final_phase, failure_threshold=failure_threshold,
                    internal_error_threshold=internal_error_threshold, conn=own)
        t = repositorybuildtrigger
        row = (await conn.execute(
            select(t.c.successive_failure_count, t.c.successive_internal_error_count)
            .where(t.c.id == trigger_id).with_for_update()
        )).first()
        if row is None:
            return
        failures = int(row.successive_failure_count)
        internal = int(row.successive_internal_error_count)
        if final_phase == COMPLETE:
            failures, internal = 0, 0
        elif final_phase == ERROR:
            failures, internal = failures + 1, 0
        elif final_phase == INTERNAL_ERROR:
            internal += 1
        values: dict[str, Any] = {
            "successive_failure_count": failures,
            "successive_internal_error_count": internal,
        }
        reason = None
        if final_phase != COMPLETE:
            if failure_threshold and failures >= failure_threshold:
                reason = DISABLED_FOR_FAILURES
            elif internal_error_threshold and internal >= internal_error_threshold:
                reason = DISABLED_FOR_INTERNAL_ERRORS
        if reason is not None:
            reason_id = await conn.scalar(
                select(disablereason.c.id).where(disablereason.c.name == reason)
            )
            values.update(enabled=False, disabled_reason_id=reason_id,
                          disabled_datetime=utcnow())
        await conn.execute(update(t).where(t.c.id == trigger_id).values(**values))
