"""Quay's build queue: `queueitem` rows with the semantics of Quay's WorkQueue
(data/queue.py), so that slipway, Quay's web app (which puts and cancels) and any other
consumer of the table agree.

- An item is *available* when `available_after <= now`, it is `available` or its lease
  (`processing_expires`) has run out, and it has retries left. It is *running* while
  not `available` and its lease has not run out.
- A claim is an UPDATE on `id` + `state_id` with a new uuid4 `state_id`: every write to
  an item changes its `state_id`, so of several consumers that read the same item only
  one claims it. A claim takes a lease and spends a retry.
- With ordering (Quay's build manager), no item is claimed while another of its
  queue name (`dockerfilebuild/<namespace>/<repository>/`) is running: one build per
  repository at a time, the oldest first.
- `complete` deletes the item; Quay's cancel deletes it too, in any phase, so every
  operation here tolerates the row being gone.

Times are naive UTC, as Quay writes them. Quay's web app cannot notify a listener, so
the queue is polled (POLL_INTERVAL_S); a poll that finds nothing is one SELECT.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    update,
    values,
)

from slipway.domain.results import INITIAL_RETRIES
from slipway.quay.tables import queueitem as q
from slipway.quay.tables import utcnow
from slipway.store.database import Database, SqlConnection

log = logging.getLogger(__name__)

# how often a manager looks for new items (Quay's own manager: every 10 s)
POLL_INTERVAL_S = 1.0
# Quay's defaults: data/queue.py
MINIMUM_EXTENSION_S = 20.0
INCOMPLETE_RETRY_AFTER_S = 300.0
DEFAULT_RETRIES = 5
BUILD_RETRIES = INITIAL_RETRIES  # endpoints/building.py start_build puts builds with 3


def canonical_name(parts: Sequence[str]) -> str:
    """Quay's queue name of `parts`: joined with `/`, with a trailing `/`."""
    return "/".join(parts) + "/"


def epoch(value: dt.datetime | None) -> float | None:
    """A naive UTC timestamp of Quay's as UNIX seconds (slipway's store uses those)."""
    return None if value is None else value.replace(tzinfo=dt.UTC).timestamp()


@dataclass(frozen=True)
class QuayQueueItem:
    """A claimed build item. `retries_remaining` is what is left after this attempt, as
    Quay's `get` returns it. `body` is Quay's JSON text: it may hold pull credentials,
    so it is kept out of logs and reprs."""

    id: int
    queue_name: str
    state_id: str
    retries_remaining: int
    processing_expires: float | None
    build_id: str  # the body's build_uuid: repositorybuild.uuid
    namespace: str
    repository: str  # "namespace/name", as in slipway's queue
    body: str = field(repr=False)

    @property
    def pull_credentials(self) -> dict[str, str] | None:
        """The body's pull_credentials: {username, password, registry}, or None."""
        creds = json.loads(self.body).get("pull_credentials")
        return dict(creds) if isinstance(creds, dict) else None


class BadQueueBody(ValueError):
    """An item's body is not a build's (no JSON object with a build_uuid)."""


def _build_uuid(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise BadQueueBody("the body is not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("build_uuid"), str):
        raise BadQueueBody("the body has no build_uuid")
    return str(parsed["build_uuid"])


class QuayQueue:
    """One of Quay's queues (by default the build queue, DOCKERFILE_BUILD_QUEUE_NAME) in
    the `queueitem` table of `db`, a PostgreSQL database."""

    def __init__(self, db: Database, queue_name: str = "dockerfilebuild") -> None:
        self.db = db
        self.queue_name = queue_name
        self._pattern = canonical_name([queue_name]) + "%"

    # --- names ----------------------------------------------------------------------

    def name_of(self, *parts: str) -> str:
        return canonical_name([self.queue_name, *parts])

    def split_name(self, queue_name: str) -> tuple[str, str]:
        """`dockerfilebuild/<namespace>/<repository>/` -> (namespace, repository); the
        repository may hold slashes (Quay's extended repository names)."""
        inner = queue_name[len(self.queue_name) + 1:].rstrip("/")
        namespace, _, repository = inner.partition("/")
        return namespace, repository

    def _ours(self):  # type: ignore[no-untyped-def]
        return q.c.queue_name.ilike(self._pattern)

    # --- predicates, as Quay's WorkQueue has them --------------------------------------

    @staticmethod
    def _available(now: dt.datetime):  # type: ignore[no-untyped-def]
        return and_(
            q.c.available_after <= now,
            or_(q.c.available.is_(True), q.c.processing_expires <= now),
            q.c.retries_remaining > 0,
        )

    @staticmethod
    def _running(now: dt.datetime):  # type: ignore[no-untyped-def]
        return and_(q.c.available.is_(False), q.c.processing_expires > now)

    # --- writes -----------------------------------------------------------------------

    async def put(
        self,
        conn: SqlConnection | None,
        parts: Sequence[str],
        body: str,
        *,
        available_after: float = 0,
        retries_remaining: int = DEFAULT_RETRIES,
    ) -> int:
        """Quay's `put`: a new item under `<queue>/<parts...>/`; its id."""
        if conn is None:
            async with self.db.write() as own:
                return await self.put(own, parts, body, available_after=available_after,
                                      retries_remaining=retries_remaining)
        row = {
            "queue_name": self.name_of(*parts),
            "body": body,
            "available_after": utcnow() + dt.timedelta(seconds=available_after),
            "available": True,
            "processing_expires": None,
            "retries_remaining": retries_remaining,
            "state_id": str(uuid.uuid4()),
        }
        return int(await conn.scalar(insert(q).values(**row).returning(q.c.id)))

    async def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        namespace_limits: Mapping[str, int] | None = None,
    ) -> list[QuayQueueItem]:
        """Claim up to `limit` items, the oldest first, at most one per queue name and none
        of a queue name already running (Quay's `get(ordering_required=True)`, for
        several items at once). NAMESPACE_LIMITS caps the running items of a namespace."""
        if limit <= 0:
            return []
        now = utcnow()
        limits = dict(namespace_limits or {})
        running_names = select(q.c.queue_name).where(self._running(now), self._ours())
        heads = (
            select(func.min(q.c.id))
            .where(self._available(now), self._ours(), q.c.queue_name.not_in(running_names))
            .group_by(q.c.queue_name)
        )
        # more candidates than asked for when some namespaces are capped
        wanted = limit * 4 if limits else limit
        async with self.db.write() as conn:
            rows = (await conn.execute(
                select(q.c.id, q.c.state_id, q.c.queue_name)
                .where(q.c.id.in_(heads)).order_by(q.c.id).limit(wanted)
            )).all()
            if limits:
                rows = await self._within_limits(conn, rows, limits, now, limit)
            rows = rows[:limit]
            if not rows:
                return []
            claimed = await self._claim_rows(conn, rows, now, lease_seconds)
            items, bad = [], []
            for row in claimed:
                try:
                    build_id = _build_uuid(row.body)
                except BadQueueBody as exc:
                    bad.append(int(row.id))
                    log.warning("queue item %s is not a build (%s); it goes back to the "
                                "queue without its retry, as Quay's manager does", row.id, exc)
                    continue
                namespace, name = self.split_name(str(row.queue_name))
                items.append(QuayQueueItem(
                    id=int(row.id), queue_name=str(row.queue_name), state_id=str(row.state_id),
                    retries_remaining=int(row.retries_remaining),
                    processing_expires=epoch(row.processing_expires), build_id=build_id,
                    namespace=namespace, repository=f"{namespace}/{name}", body=str(row.body),
                ))
            for item_id in bad:
                await self.incomplete(conn, item_id, retry_after=INCOMPLETE_RETRY_AFTER_S)
        items.sort(key=lambda item: item.id)
        return items

    async def _claim_rows(
        self, conn: SqlConnection, rows: Sequence[Any], now: dt.datetime, lease_seconds: float
    ) -> list[Any]:
        """The optimistic claim: each row only if its state_id is still the one read."""
        claims = values(
            column("claim_id", Integer), column("seen_state", String),
            column("new_state", String), name="claims",
        ).data([(int(r.id), str(r.state_id), str(uuid.uuid4())) for r in rows])
        result = await conn.execute(
            update(q)
            .where(q.c.id == claims.c.claim_id, q.c.state_id == claims.c.seen_state)
            .values(
                available=False,
                processing_expires=now + dt.timedelta(seconds=lease_seconds),
                retries_remaining=q.c.retries_remaining - 1,
                state_id=claims.c.new_state,
            )
            .returning(q.c.id, q.c.queue_name, q.c.body, q.c.retries_remaining,
                       q.c.state_id, q.c.processing_expires)
        )
        return list(result.all())

    async def _within_limits(
        self,
        conn: SqlConnection,
        rows: Sequence[Any],
        limits: Mapping[str, int],
        now: dt.datetime,
        limit: int,
    ) -> list[Any]:
        """The candidates a NAMESPACE_LIMITS cap leaves. The capped namespaces are locked
        (in order, until commit) before their running items are counted, so managers
        claiming at once cannot overshoot a cap together."""
        capped = sorted({ns for ns in (self.split_name(r.queue_name)[0] for r in rows)
                         if ns in limits})
        for ns in capped:
            await conn.execute(
                select(func.pg_advisory_xact_lock(
                    func.hashtextextended(f"slipway-quay-queue:ns:{ns}", 0)))
            )
        running: dict[str, int] = defaultdict(int)
        if capped:
            names = (await conn.execute(
                select(q.c.queue_name).where(self._running(now), self._ours())
            )).scalars()
            for name in names:
                running[self.split_name(str(name))[0]] += 1
        kept = []
        for row in rows:
            ns = self.split_name(str(row.queue_name))[0]
            if ns in limits:
                if running[ns] >= limits[ns]:
                    continue
                running[ns] += 1
            kept.append(row)
            if len(kept) >= limit:
                break
        return kept

    async def incomplete(
        self,
        conn: SqlConnection | None,
        item_id: int,
        *,
        restore_retry: bool = False,
        retry_after: float = INCOMPLETE_RETRY_AFTER_S,
    ) -> bool:
        """Quay's `incomplete`: the item is available again after `retry_after` seconds
        (its lease end is left as it was), with the claim's retry given back if
        `restore_retry`. Whether it has retries left; False if it is gone."""
        if conn is None:
            async with self.db.write() as own:
                return await self.incomplete(own, item_id, restore_retry=restore_retry,
                                             retry_after=retry_after)
        retry_date = utcnow() + dt.timedelta(seconds=retry_after)
        row = (await conn.execute(
            select(q.c.retries_remaining).where(q.c.id == item_id).with_for_update()
        )).first()
        if row is None:
            return False
        retries = int(row.retries_remaining) + (1 if restore_retry else 0)
        await conn.execute(
            update(q).where(q.c.id == item_id).values(
                available_after=retry_date, available=True, retries_remaining=retries,
                state_id=str(uuid.uuid4()),
            )
        )
        return retries > 0

    async def extend_processing(
        self,
        item_id: int,
        seconds_from_now: float,
        *,
        minimum_extension: float = MINIMUM_EXTENSION_S,
        updated_body: str | None = None,
        conn: SqlConnection | None = None,
    ) -> bool:
        """Quay's `extend_processing`: the lease moves to `seconds_from_now` only if that
        is more than `minimum_extension` later than it was; the body is replaced when
        `updated_body` differs. Whether anything was written (False too when the item is
        gone). A lease that was never set is set (Quay would fail on it)."""
        if conn is None:
            async with self.db.write() as own:
                return await self.extend_processing(
                    item_id, seconds_from_now, minimum_extension=minimum_extension,
                    updated_body=updated_body, conn=own)
        row = (await conn.execute(
            select(q.c.processing_expires, q.c.body).where(q.c.id == item_id).with_for_update()
        )).first()
        if row is None:
            return False
        new_expiration = utcnow() + dt.timedelta(seconds=seconds_from_now)
        changes: dict[str, Any] = {}
        old = row.processing_expires
        if old is None or new_expiration - old > dt.timedelta(seconds=minimum_extension):
            changes["processing_expires"] = new_expiration
        if updated_body is not None and row.body != updated_body:
            changes["body"] = updated_body
        if not changes:
            return False
        await conn.execute(
            update(q).where(q.c.id == item_id).values(**changes, state_id=str(uuid.uuid4()))
        )
        return True

    async def extend_processing_many(
        self,
        leases: Sequence[tuple[int, float]],
        conn: SqlConnection | None = None,
        *,
        minimum_extension: float = MINIMUM_EXTENSION_S,
    ) -> list[bool]:
        """Many leases pushed out at once (item id, seconds from now), each only when it
        moves by more than `minimum_extension` (as `extend_processing`), one UPDATE per
        distinct length. For each, whether the item still exists: the manager learns of
        a cancelled build's deleted item this way."""
        if conn is None:
            async with self.db.write() as own:
                return await self.extend_processing_many(
                    leases, own, minimum_extension=minimum_extension)
        now = utcnow()
        by_seconds: dict[float, list[int]] = defaultdict(list)
        for item_id, seconds in leases:
            by_seconds[seconds].append(item_id)
        alive: set[int] = set()
        for seconds, ids in by_seconds.items():
            expires = now + dt.timedelta(seconds=seconds)
            latest_old = expires - dt.timedelta(seconds=minimum_extension)
            rows = values(column("lease_id", Integer), column("new_state", String),
                          name="leases").data([(i, str(uuid.uuid4())) for i in set(ids)])
            extended = set((await conn.execute(
                update(q)
                .where(q.c.id == rows.c.lease_id,
                       or_(q.c.processing_expires.is_(None),
                           q.c.processing_expires < latest_old))
                .values(processing_expires=expires, state_id=rows.c.new_state)
                .returning(q.c.id)
            )).scalars())
            alive |= extended
            rest = set(ids) - extended
            if rest:
                alive |= set((await conn.execute(
                    select(q.c.id).where(q.c.id.in_(sorted(rest)))
                )).scalars())
        return [item_id in alive for item_id, _ in leases]

    async def complete(self, conn: SqlConnection | None, item_id: int) -> bool:
        """Quay's `complete` (and `cancel`): the item is deleted. Whether it was there."""
        if conn is None:
            async with self.db.write() as own:
                return await self.complete(own, item_id)
        result = await conn.execute(delete(q).where(q.c.id == item_id))
        return bool(result.rowcount)

    # --- reads ------------------------------------------------------------------------

    async def get(self, item_id: int) -> dict[str, Any] | None:
        """The item's row (all columns), or None."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(q).where(q.c.id == item_id))).first()
        return dict(row._mapping) if row else None

    async def has_retries_remaining(self, item_id: int) -> bool:
        async with self.db.read() as conn:
            retries = await conn.scalar(select(q.c.retries_remaining).where(q.c.id == item_id))
        return retries is not None and int(retries) > 0

    async def num_alive_jobs(self, namespace: str) -> int:
        """Quay's `num_alive_jobs([namespace])`: items of the namespace with retries left
        (what start_build checks against maximum_queued_builds_count)."""
        pattern = "/".join([self.queue_name, namespace.lstrip("/")]) + "%"
        async with self.db.read() as conn:
            n = await conn.scalar(
                select(func.count()).where(q.c.queue_name.ilike(pattern),
                                           q.c.retries_remaining > 0)
            )
        return int(n or 0)

    async def next_available_at(self, after: float) -> float | None:
        """The earliest time after `after` (UNIX seconds) at which an item waiting its
        turn becomes available or a lease runs out; None when there is none."""
        moment = dt.datetime.fromtimestamp(after, dt.UTC).replace(tzinfo=None)
        async with self.db.read() as conn:
            waiting = await conn.scalar(
                select(func.min(q.c.available_after)).where(
                    self._ours(), q.c.available.is_(True), q.c.retries_remaining > 0,
                    q.c.available_after > moment,
                )
            )
            leased = await conn.scalar(
                select(func.min(q.c.processing_expires)).where(
                    self._ours(), q.c.available.is_(False), q.c.processing_expires > moment,
                    q.c.retries_remaining > 0,
                )
            )
        times = [t for t in (epoch(waiting), epoch(leased)) if t is not None]
        return min(times) if times else None
