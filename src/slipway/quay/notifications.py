"""Quay's repository notifications for builds (Quay's notifications/__init__.py
spawn_notification, buildman's BuildJobNotifier): one `queueitem` in the notification
queue per `repositorynotification` of the repository for the event; Quay's
notificationworker delivers them (webhook, email, Slack, ...). None when the
repository has no notification for the event.

The manager sends build_start (on `building`), build_success and build_failure;
Quay's web app sends build_queued and build_cancelled."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from slipway.quay.builds import QuayBuild
from slipway.quay.queue import QuayQueue
from slipway.quay.tables import externalnotificationevent as event
from slipway.quay.tables import repository, repositorynotification, user
from slipway.store.database import Database, SqlConnection

BUILD_EVENTS = ("build_queued", "build_start", "build_success", "build_failure",
                "build_cancelled")
NOTIFICATION_RETRIES = 5  # WorkQueue.put's default, which spawn_notification keeps


@dataclass(frozen=True)
class Site:
    """How Quay names itself in links: PREFERRED_URL_SCHEME and SERVER_HOSTNAME."""

    scheme: str
    server_hostname: str


def repository_event_data(site: Site, namespace: str, name: str,
                          extra: dict[str, Any] | None = None,
                          subpage: str | None = None) -> dict[str, Any]:
    """Quay's build_repository_event_data."""
    repo = f"{namespace}/{name}"
    homepage = f"{site.scheme}://{site.server_hostname}/repository/{repo}"
    if subpage:
        homepage += subpage if subpage.startswith("/") else "/" + subpage
    data: dict[str, Any] = {
        "repository": repo,
        "namespace": namespace,
        "name": name,
        "docker_url": f"{site.server_hostname}/{repo}",
        "homepage": homepage,
    }
    data.update(extra or {})
    return data


def build_event_data(
    build: QuayBuild,
    *,
    error_message: str | None = None,
    image_id: str | None = None,
    manifest_digests: list[str] | None = None,
) -> dict[str, Any]:
    """The build's part of event_data (BuildJobNotifier.send_notification)."""
    trigger = build.trigger
    data: dict[str, Any] = {
        "build_id": build.uuid,
        "build_name": build.display_name,
        "docker_tags": build.tags,
        "trigger_id": trigger.uuid if trigger is not None else None,
        "trigger_kind": trigger.service if trigger is not None else None,
        "trigger_metadata": build.job_config.get("trigger_metadata", {}),
    }
    if image_id is not None:
        data["image_id"] = image_id
    if manifest_digests:
        data["manifest_digests"] = manifest_digests
    if error_message is not None:
        data["error_message"] = error_message
    return data


class QuayNotifications:
    def __init__(self, db: Database, site: Site, queue_name: str = "notification") -> None:
        self.db = db
        self.site = site
        self.queue = QuayQueue(db, queue_name)

    async def spawn(
        self,
        namespace: str,
        name: str,
        event_name: str,
        extra: dict[str, Any] | None = None,
        *,
        subpage: str | None = None,
        pathargs: list[str] | None = None,
        performer_data: dict[str, Any] | None = None,
        conn: SqlConnection | None = None,
    ) -> list[int]:
        """Quay's spawn_notification; the ids of the queue items it made."""
        if conn is None:
            async with self.db.write() as own:
                return await self.spawn(namespace, name, event_name, extra, subpage=subpage,
                                        pathargs=pathargs, performer_data=performer_data,
                                        conn=own)
        event_data = repository_event_data(self.site, namespace, name, extra, subpage)
        ns_user = user.alias("ns_user")
        uuids = (await conn.execute(
            select(repositorynotification.c.uuid)
            .join(repository, repository.c.id == repositorynotification.c.repository_id)
            .join(ns_user, ns_user.c.id == repository.c.namespace_user_id)
            .join(event, event.c.id == repositorynotification.c.event_id)
            .where(ns_user.c.username == namespace, repository.c.name == name,
                   event.c.name == event_name)
            .order_by(repositorynotification.c.id)
        )).scalars().all()
        parts = [namespace, name, event_name, *(pathargs or [])]
        ids = []
        for notification_uuid in uuids:
            body = {
                "notification_uuid": notification_uuid,
                "event_data": event_data,
                "performer_data": performer_data or {},
            }
            ids.append(await self.queue.put(conn, parts, json.dumps(body),
                                            retries_remaining=NOTIFICATION_RETRIES))
        return ids

    async def send_for_build(
        self,
        build: QuayBuild,
        event_name: str,
        *,
        error_message: str | None = None,
        image_id: str | None = None,
        manifest_digests: list[str] | None = None,
        conn: SqlConnection | None = None,
    ) -> list[int]:
        """A build event (build_start, build_success, build_failure, ...), with the
        subpage and path Quay's BuildJobNotifier gives it."""
        if event_name not in BUILD_EVENTS:
            raise ValueError(f"{event_name!r} is not a build event: {', '.join(BUILD_EVENTS)}")
        extra = build_event_data(build, error_message=error_message, image_id=image_id,
                                 manifest_digests=manifest_digests)
        return await self.spawn(build.namespace, build.name, event_name, extra,
                                subpage=f"build/{build.uuid}", pathargs=["build", build.uuid],
                                conn=conn)
