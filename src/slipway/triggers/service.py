"""The triggers' background work beside a manager (docs/triggers.md): commit statuses
posted as builds move, scheduled rebuilds, and the base-image watch. Safe with several
managers: each post, scheduled run and digest move is claimed in the database first
(a compare-and-set), and only the manager that wins acts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx

from slipway.config.models import AppConfig
from slipway.domain.refusals import Refused
from slipway.manager.admission import Admission
from slipway.manager.background import finish_or_cancel
from slipway.manager.control import BuildControl
from slipway.store.errors import SecretsUnavailable
from slipway.store.interfaces import Triggers, triggers_of
from slipway.store.records import StatusRow, StoredTrigger
from slipway.triggers.base_images import BaseImageError, base_image_digests
from slipway.triggers.builds import RefNotFound, resolve_ref, submit_push
from slipway.triggers.schedule import next_run
from slipway.triggers.status import (
    FINAL_STATES,
    StatusPostFailed,
    post_status,
    state_of,
    status_post,
)
from slipway.triggers.webhooks import Push

log = logging.getLogger("slipway.triggers")

TICK_SECONDS = 1.0
# a failed status post is tried again after 2, 4, 8 ... seconds, at most 5 minutes apart,
# 10 times in all
STATUS_RETRY_FIRST = 2.0
STATUS_RETRY_CAP = 300.0
STATUS_TRIES = 10
STOP_GRACE_SECONDS = 2.0


def retry_after(tries: int) -> float:
    return float(min(STATUS_RETRY_FIRST * 2 ** tries, STATUS_RETRY_CAP))


class TriggerService:
    def __init__(self, config: AppConfig, store: Any, triggers: Triggers,
                 admission: Admission) -> None:
        self.config = config
        self.store = store
        self.triggers = triggers
        self.admission = admission
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._next_watch = 0.0
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await finish_or_cancel(self._task, STOP_GRACE_SECONDS)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick(time.time())
            except Exception:  # a database outage, ...: logged, tried at the next tick
                log.exception("trigger background pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await self._stopping.wait()

    async def tick(self, now: float) -> None:
        await self.post_statuses(now)
        await self.run_schedules(now)
        if now >= self._next_watch:
            self._next_watch = now + self.config.TRIGGER_BASE_IMAGE_INTERVAL
            await self.watch_base_images()

    # --- commit statuses ---------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def post_statuses(self, now: float) -> None:
        for row in await self.triggers.statuses_due(now):
            await self._post_one(row, now)

    async def _post_one(self, row: StatusRow, now: float) -> None:
        record = await self.store.builds.get(row.build_id)
        trigger = await self.triggers.get(row.trigger_id)
        if record is None or trigger is None:
            await self.triggers.status_failed(row.build_id, "the build or its trigger is "
                                              "gone", give_up=True)
            return
        state = state_of(record)
        if state == row.posted:
            return
        if not await self.triggers.claim_status(row, state, now + retry_after(row.tries),
                                                now):
            return  # another manager posts it
        try:
            token = (await self.triggers.credentials(trigger.id)).get("status_token", "")
            if not token:
                raise StatusPostFailed("the trigger has no status_token")
            base = str(self.config.PUBLIC_URL).rstrip("/")
            target = (f"{base}/#/build/{record.namespace}/{record.repository}/"
                      f"{record.id}")
            await post_status(self._http(), status_post(trigger, token, record, state,
                                                        target))
        except (StatusPostFailed, SecretsUnavailable) as exc:
            give_up = row.tries + 1 >= STATUS_TRIES
            log.warning("commit status %s of build %s (trigger %s) not posted%s: %s",
                        state, record.id, trigger.id,
                        "; giving up" if give_up else "; will try again", exc)
            await self.triggers.status_failed(record.id, str(exc), give_up)
            return
        await self.triggers.status_posted(record.id, state, state in FINAL_STATES, now)

    # --- scheduled rebuilds ------------------------------------------------------------------

    async def run_schedules(self, now: float) -> None:
        for trigger in await self.triggers.due_runs(now):
            schedule = trigger.spec.get("schedule") or {}
            due = trigger.next_run
            assert due is not None
            following = next_run(schedule["cron"], max(now, due)) if schedule else None
            if not await self.triggers.claim_run(trigger.id, due, following):
                continue  # another manager starts it
            ref = schedule.get("ref") or str(trigger.spec.get("default_branch") or "main")
            await self._build_ref(trigger, ref, "schedule", pull=bool(schedule.get("pull")),
                                  no_cache=bool(schedule.get("no_cache")))

    async def _build_ref(self, trigger: StoredTrigger, ref: str, event: str, *,
                         pull: bool, no_cache: bool, reason: str = "") -> None:
        """Build the head of `ref`; what happened goes into the trigger's deliveries."""
        try:
            full, commit = await resolve_ref(trigger, await self.triggers.credentials(
                trigger.id), ref)
            push = Push(ref=full, commit=commit, default_branch=None, changed=None)
            admitted = await submit_push(self.admission, self.triggers, self.config,
                                         trigger, push, cause=event, pull=pull,
                                         no_cache=no_cache)
        except (RefNotFound, Refused, SecretsUnavailable) as exc:
            text = exc.message if isinstance(exc, Refused) else str(exc)
            log.warning("%s build of trigger %s not started: %s", event, trigger.id, text)
            await self.triggers.record_delivery(trigger.id, None, event, "failed", text,
                                                ref=ref)
            return
        record = admitted.record
        log.info("%s build %s of trigger %s (%s@%s)", event, record.id, trigger.id, ref,
                 commit[:7])
        await self.triggers.record_delivery(
            trigger.id, None, event, "built",
            (reason + "; " if reason else "") + f"build {record.id} of {ref}@{commit[:7]}",
            ref=full, commit_sha=commit, build_id=record.id)

    # --- the base-image watch ----------------------------------------------------------------

    async def watch_base_images(self) -> None:
        for trigger in await self.triggers.all_enabled():
            if trigger.spec.get("watch_base_images"):
                await self.watch_one(trigger)

    async def watch_one(self, trigger: StoredTrigger) -> None:
        """Read the digests of the Dockerfile's FROM images; the first look records them,
        a later one that sees one moved starts a build (with --pull)."""
        ref = str(trigger.spec.get("default_branch") or "main")
        try:
            credentials = await self.triggers.credentials(trigger.id)
            now = await base_image_digests(trigger, credentials, ref, self.config)
        except (BaseImageError, RefNotFound, SecretsUnavailable) as exc:
            log.warning("base-image watch of trigger %s: %s", trigger.id, exc)
            return
        seen = trigger.base_digests
        if now == seen:
            return
        if not await self.triggers.swap_base_digests(trigger.id, seen, now):
            return  # another manager saw it first
        if not seen:
            return  # the first look: nothing to compare with
        moved = sorted(image for image, digest in now.items() if seen.get(image) != digest)
        await self._build_ref(trigger, ref, "base-image", pull=True, no_cache=False,
                              reason=f"base image moved: {', '.join(moved)}")


def trigger_services(config: AppConfig, store: Any, control: BuildControl
                     ) -> list[TriggerService]:
    """The triggers' service when the store keeps triggers (slipway's own tables; Quay
    mode: none)."""
    triggers = triggers_of(store)
    if triggers is None:
        return []
    return [TriggerService(config, store, triggers, Admission(config, store, control))]
