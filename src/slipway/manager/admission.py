"""Admission: the rules a build must pass to be queued, in the one place every way of
submitting a build goes through (the API's start and rebuild routes, and the build
triggers: their webhooks, "run now", schedules and base-image watch, triggers/builds.py),
before it is stored and queued.

The rules, in the order they are checked (docs/api.md): the namespace and repository
names (domain/names.py), builds enabled (FEATURE_BUILD_SUPPORT), the registry
(SERVER_HOSTNAME or ALLOWED_REGISTRIES, or one on loopback with LOOPBACK_REGISTRIES, and a
valid host), the tags (at most MAX_TAGS_PER_BUILD), the image reference, the
uploaded context being there, the build secrets (build_secrets.py), the timeout asked for
(at most MACHINE_MAX_TIME), and room in the namespace's queue
(NAMESPACE_MAX_QUEUED_BUILDS). The build's timeout and queue TTL, given or configured
(manager/build_limits.py), are written into its options. It sits in manager/, not
store/: the rules read the configuration and the result wakes the managers, while store/
only keeps state, behind interfaces that each backend implements once
(store/interfaces.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slipway.build_secrets import InvalidSecret, secrets_for_build
from slipway.config.models import AppConfig
from slipway.domain.names import (
    InvalidName,
    check_image_name,
    check_namespace,
    check_registry_host,
    check_repository,
)
from slipway.domain.phases import Phase
from slipway.domain.refusals import Refusal, Refused
from slipway.manager.build_limits import (
    TIMEOUT_OPTION,
    check_timeout,
    limits_for_submission,
    queue_ttl_of,
    submitted_limit,
)
from slipway.manager.control import BuildControl
from slipway.manager.phase_log import phase_entry
from slipway.metrics import BUILDS_SUBMITTED
from slipway.store.interfaces import Store
from slipway.store.records import BuildRecord, NewBuild, WaitReason

# when a client refused for a full queue may try again, seconds
QUEUE_FULL_RETRY_AFTER = 30
# Tags one build pushes. Each tag is a name podman commits and pushes in turn: with
# thousands the build sits in COMMIT for minutes. Quay's own UI offers a handful;
# a release rarely needs more than a few dozen.
MAX_TAGS_PER_BUILD = 100


@dataclass(frozen=True)
class Admitted:
    """A queued build, and why it waits as read in the transaction that queued it."""

    record: BuildRecord
    waiting: WaitReason | None


@dataclass(frozen=True)
class Submission:
    new: NewBuild
    # the build this one starts again (a rebuild), whose messages name it
    again_of: str | None = None
    # build secrets given with this submission (values); the configured ones are added
    secrets: Mapping[str, str] | None = None


def check_repository_names(namespace: str, repository: str) -> None:
    """The first rule, also for reads of a repository's builds."""
    try:
        check_namespace(namespace)
        check_repository(repository)
    except InvalidName as exc:
        raise Refused(Refusal.INVALID, str(exc)) from None


def check_tag_count(tags: Sequence[str]) -> None:
    if len(tags) > MAX_TAGS_PER_BUILD:
        raise Refused(
            Refusal.INVALID,
            f"docker_tags: {len(tags)} tags given; a build pushes at most "
            f"{MAX_TAGS_PER_BUILD} tags: push the others in another build, or tag the "
            "image afterwards (e.g. skopeo copy)",
        )


class Admission:
    def __init__(self, config: AppConfig, store: Store, control: BuildControl) -> None:
        self.config = config
        self.store = store
        self.control = control

    async def submit(self, submission: Submission) -> Admitted:
        """Check the rules (Refused: the first one broken), then store the build, its
        queue item and its first log entry in one transaction, read there why it waits,
        and wake the managers."""
        arrived = time.time()
        secrets = await self.check(submission)
        # the record lists the ids only: values are never shown
        options = {k: v for k, v in submission.new.options.items() if k != "secrets"}
        options = self.time_limits(options, submission.new.namespace)
        if secrets:
            options["secrets"] = sorted(secrets)
        new = dataclasses.replace(submission.new, options=options, submitted=arrived)
        async with self.store.write() as conn:
            record = await queue_new_build(self.store, conn, new, secrets)
            reasons = await waiting_reasons(self.store, self.config, [record.id], conn)
        waiting = reasons.get(record.id)
        tracing = self.control.tracing
        tracing.admitted(record.id, waiting.kind if waiting else None)
        # from the request's arrival (its rules checked) to the build queued
        tracing.record(record.id, "admission", arrived, time.time(),
                       **{"slipway.repository": f"{record.namespace}/{record.repository}",
                          "slipway.waiting_for": waiting.kind if waiting else None})
        BUILDS_SUBMITTED.labels(record.namespace).inc()
        await self.control.wake_managers()
        return Admitted(record, waiting)

    async def check(self, submission: Submission) -> dict[str, str]:
        """The rules; returns the build's secrets (configured and submitted, merged)."""
        new = submission.new
        check_repository_names(new.namespace, new.repository)
        self.check_enabled()
        self.check_registry(new.registry)
        check_tag_count(new.tags)
        try:
            check_image_name(new.registry, new.namespace, new.repository)
        except InvalidName as exc:
            raise Refused(Refusal.INVALID, str(exc)) from None
        await self.check_context(submission)
        secrets = self.build_secrets(submission)
        timeout = submitted_limit(new.options, TIMEOUT_OPTION)
        if timeout is not None:
            check_timeout(timeout, self.machine_max_time)
        await self.check_queue_room(new.namespace)
        return secrets

    @property
    def machine_max_time(self) -> int | None:
        """This server's MACHINE_MAX_TIME; None when it runs no manager (an external
        one's is not known here: the attempt caps the timeout then)."""
        manager = self.config.manager
        return None if manager is None else manager.MACHINE_MAX_TIME

    def time_limits(self, options: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        return limits_for_submission(
            options, namespace, timeouts=self.config.BUILD_TIMEOUTS,
            queue_ttls=self.config.QUEUE_TTL, machine_max_time=self.machine_max_time,
        )

    def check_enabled(self) -> None:
        if not self.config.FEATURE_BUILD_SUPPORT:
            raise Refused(Refusal.DISABLED,
                          "builds are disabled on this server (FEATURE_BUILD_SUPPORT is false)")

    def check_registry(self, registry: str) -> None:
        if not self.config.registry_allowed(registry):
            allowed = ", ".join(self.config.allowed_registries)
            if self.config.LOOPBACK_REGISTRIES:
                allowed += " and any registry on loopback (127.0.0.1, ::1, localhost)"
            raise Refused(
                Refusal.INVALID,
                f"registry: {registry!r} is not a registry this server pushes to; allowed: "
                f"{allowed} (an administrator adds others to ALLOWED_REGISTRIES)",
            )
        try:
            check_registry_host(registry)
        except InvalidName as exc:
            where = ("SERVER_HOSTNAME" if registry == self.config.SERVER_HOSTNAME
                     else "ALLOWED_REGISTRIES")
            raise Refused(Refusal.INVALID,
                          f"registry: {exc}; an administrator fixes it in {where}") from None

    async def check_context(self, submission: Submission) -> None:
        """An uploaded context must be on this server, complete."""
        new = submission.new
        if new.resource_key is None or new.archive_url:
            return
        upload = await self.store.uploads.get(new.resource_key)
        if upload is not None and upload.complete:
            return
        if submission.again_of is not None:
            raise Refused(
                Refusal.INVALID,
                f"the uploaded context of build {submission.again_of} is no longer on this "
                "server; start a new build with the context",
            )
        raise Refused(
            Refusal.INVALID,
            f"file_id: {new.resource_key!r} has no uploaded content; POST /api/v1/filedrop/ "
            "and PUT the archive to the returned url first",
        )

    def build_secrets(self, submission: Submission) -> dict[str, str]:
        new = submission.new
        configured = self.config.BUILD_SECRETS
        if submission.again_of is None:
            try:
                return secrets_for_build(configured, new.namespace, new.repository,
                                         submission.secrets)
            except InvalidSecret as exc:
                raise Refused(Refusal.INVALID, str(exc)) from None
        # a rebuild: submitted secrets ended with their build; the configured ones are
        # read anew
        try:
            secrets = secrets_for_build(configured, new.namespace, new.repository, None)
        except InvalidSecret as exc:  # too many, once the namespace's and repository's merge
            raise Refused(Refusal.INVALID,
                          f"{exc}; an administrator fixes it in BUILD_SECRETS") from None
        gone = sorted(set(new.options.get("secrets") or ()) - set(secrets))
        if gone:
            raise Refused(
                Refusal.INVALID,
                f"build {submission.again_of} was given secrets {', '.join(gone)} when it "
                "was submitted; a build's secrets are deleted when it ends, so start a new "
                "build with them",
            )
        return secrets

    async def check_queue_room(self, namespace: str) -> None:
        limit = self.config.NAMESPACE_MAX_QUEUED_BUILDS
        if await self.store.queue.count_queued(namespace) >= limit:
            raise Refused(
                Refusal.QUEUE_FULL,
                f"namespace {namespace!r} already has {limit} builds queued, its limit; "
                "retry when some have finished",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )


async def store_new_build(
    store: Store, new: NewBuild, secrets: Mapping[str, str] | None = None
) -> BuildRecord:
    """`queue_new_build` in a transaction of its own."""
    async with store.write() as conn:
        return await queue_new_build(store, conn, new, secrets)


async def queue_new_build(
    store: Store, conn: Any, new: NewBuild, secrets: Mapping[str, str] | None = None
) -> BuildRecord:
    """The record (phase `waiting`), its queue item, its first log entry and its secrets
    (encrypted), in `conn`'s transaction: on SQLite every transaction waits its turn for
    the one writer, and no reader sees a build without its queue item."""
    record = await store.builds.create(conn, new)
    ttl = queue_ttl_of(new.options)
    await store.queue.put(conn, record.id, new.namespace,
                          f"{new.namespace}/{new.repository}",
                          retries_remaining=record.retries_remaining,
                          start_within=None if ttl is None else float(ttl.seconds))
    await store.logs.append(record.id, [phase_entry(Phase.WAITING)], conn)
    if secrets:
        await store.secrets.put(conn, record.id, secrets)
    return record


async def waiting_reasons(
    store: Store, config: AppConfig, build_ids: list[str], conn: Any = None
) -> dict[str, WaitReason]:
    """Why each of these builds waits, by the limits this server's managers apply
    (status.waiting_for); in `conn`'s transaction when given."""
    if not build_ids:
        return {}
    manager = config.manager
    return await store.queue.why_waiting(
        build_ids,
        namespace_limits=manager.NAMESPACE_LIMITS if manager else None,
        workers_per_manager=manager.ALLOWED_WORKER_COUNT if manager else None,
        conn=conn,
    )
