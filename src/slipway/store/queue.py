"""The build queue, with Quay's WorkQueue semantics.

- An item is claimable when it is available and its `available_after` has passed, or when
  the lease of the manager processing it has expired; and while it has retries left.
- Claiming counts an attempt: `retries_remaining` goes down by one (as in Quay), so the
  value an executor sees is what is left *after* the current attempt.
- One item per repository is processed at a time; within a repository, FIFO.
- Across namespaces, claims go round robin; NAMESPACE_LIMITS caps a namespace.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from slipway.domain.results import INITIAL_RETRIES
from slipway.store.database import Database, SqlConnection
from slipway.store.records import QueueItem, RoundRobin, WaitReason
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import build_queue as q

__all__ = ["BuildQueue", "QueueItem", "RoundRobin", "WaitReason"]


def _row_to_item(row: Any) -> QueueItem:
    return QueueItem(
        id=int(row["id"]),
        build_id=str(row["build_id"]),
        namespace=str(row["namespace"]),
        repository=str(row["repository"]),
        retries_remaining=int(row["retries_remaining"]),
        state_id=str(row["state_id"]),
        processing_expires=row["processing_expires"],
    )


def _claimable(now: float):  # type: ignore[no-untyped-def]
    waiting = and_(q.c.available.is_(True), q.c.available_after <= now)
    lease_lost = and_(q.c.available.is_(False), q.c.processing_expires <= now)
    return and_(or_(waiting, lease_lost), q.c.retries_remaining > 0)


def _processing(now: Any, table: Any = q):  # type: ignore[no-untyped-def]
    return and_(table.c.available.is_(False), table.c.processing_expires > now)


# Lease extensions, built once (hot path: a statement built per call, then its cache key,
# costs more than running it)
_EXTEND_ONE = (
    update(q)
    .where(q.c.id == bindparam("item_id"), q.c.available.is_(False))
    .values(processing_expires=bindparam("expires"))
)
_EXTEND_MANY = (
    update(q)
    .where(q.c.id.in_(bindparam("item_ids", expanding=True)), q.c.available.is_(False))
    .values(processing_expires=bindparam("expires"))
    .returning(q.c.id)
)


@functools.cache
def _why_waiting_statement(with_limits: bool, with_workers: bool) -> Select[Any]:
    """`why_waiting`'s one statement, built once per shape (building it, with its alias
    and subqueries, cost more than running it)."""
    now: Any = bindparam("now", type_=Float)
    other = q.alias("other")
    same_repo = other.c.repository == q.c.repository
    running = select(other.c.build_id).where(same_repo, _processing(now, other)) \
        .limit(1).scalar_subquery()
    # the first of the repository's items that can still run: the others wait for it
    head = select(other.c.build_id).where(same_repo, other.c.retries_remaining > 0) \
        .order_by(other.c.id).limit(1).scalar_subquery()
    columns: list[Any] = [q.c.build_id, q.c.namespace, q.c.available_after,
                          running.label("running"), head.label("head")]
    if with_limits:
        columns.append(case(
            (q.c.namespace.in_(bindparam("limited", expanding=True)),
             select(func.count()).where(other.c.namespace == q.c.namespace,
                                        _processing(now, other)).scalar_subquery()),
            else_=0,
        ).label("namespace_busy"))
    if with_workers:
        in_flight = select(other.c.id).where(_processing(now, other)).subquery()
        claimers = select(other.c.claimed_by).where(_processing(now, other)).subquery()
        columns.append(select(func.count()).select_from(in_flight)
                       .scalar_subquery().label("total"))
        columns.append(select(func.count(claimers.c.claimed_by.distinct()))
                       .scalar_subquery().label("managers"))
    return select(*columns).where(q.c.build_id.in_(bindparam("build_ids", expanding=True)),
                                  q.c.available.is_(True))


def due_to_expire_statement(now: float, limit: int) -> Select[Any]:
    """The queue-expiry look's read (tests/store/test_queue_expiry_store.py EXPLAINs it).
    start_by alone: a claim clears it, so an item that has one still waits (with
    `available` too, SQLite reads ix_queue_available, every waiting item)."""
    return select(q).where(q.c.start_by <= now).order_by(q.c.start_by).limit(limit)


class BuildQueue:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(
        self,
        conn: SqlConnection,
        build_id: str,
        namespace: str,
        repository: str,
        *,
        retries_remaining: int = INITIAL_RETRIES,
        available_after: float | None = None,
        start_within: float | None = None,
    ) -> None:
        """Enqueue inside the caller's transaction (the build record is written with it).
        `start_within`: seconds (QUEUE_TTL) after which the build expires if no attempt of
        it was claimed."""
        now = time.time()
        await conn.execute(
            insert(q).values(
                build_id=build_id,
                namespace=namespace,
                repository=repository,
                available=True,
                available_after=available_after if available_after is not None else now,
                retries_remaining=retries_remaining,
                state_id=str(uuid.uuid4()),
                start_by=None if start_within is None else now + start_within,
            )
        )

    async def claim(
        self,
        manager_id: str,
        *,
        limit: int,
        lease_seconds: float,
        namespace_limits: Mapping[str, int] | None = None,
        round_robin: RoundRobin | None = None,
    ) -> list[QueueItem]:
        """Claim up to `limit` items, one per repository, round robin across namespaces."""
        if limit <= 0:
            return []
        now = time.time()
        limits = namespace_limits or {}
        round_robin = round_robin or RoundRobin()
        # SQLite: one round (the write lock makes this claim the only one). PostgreSQL:
        # items another manager is claiming right now are skipped, so candidates for a few
        # more rounds are read, to try instead of coming back empty-handed.
        rounds = 1 if self.db.is_sqlite else 4
        async with self.db.write() as conn:
            room: dict[str, int] = {}
            if limits:
                counted = await conn.execute(
                    select(q.c.namespace, func.count())
                    .where(_processing(now), q.c.namespace.in_(list(limits)))
                    .group_by(q.c.namespace)
                )
                running = {ns: int(n) for ns, n in counted.all()}
                room = {ns: cap - running.get(ns, 0) for ns, cap in limits.items()}
            candidates = (await conn.execute(
                _round_robin_candidates(now, room, round_robin.last, limit * rounds)
            )).all()
            items: list[QueueItem] = []
            order: list[int] = []
            taken = 0
            for _ in range(rounds):
                chosen = candidates[taken:taken + limit - len(items)]
                if not chosen:
                    break
                taken += len(chosen)
                round_robin.last = str(chosen[-1].namespace)
                got = [int(row.id) for row in chosen]
                if not self.db.is_sqlite:
                    got = await _lock_for_claim(conn, got, limits, now)
                if got:
                    items.extend(await self._claim_rows(conn, got, manager_id, now,
                                                        lease_seconds))
                    order.extend(got)
                if len(got) == len(chosen) or len(items) >= limit:
                    break
        position = {item_id: i for i, item_id in enumerate(order)}
        items.sort(key=lambda i: position[i.id])
        return items

    async def _claim_rows(
        self,
        conn: SqlConnection,
        ids: list[int],
        manager_id: str,
        now: float,
        lease_seconds: float,
    ) -> list[QueueItem]:
        claim = update(q).where(q.c.id.in_(ids), _claimable(now))
        if not self.db.is_sqlite:
            # re-checked under the repository locks, in a snapshot taken after them
            busy_repos = select(q.c.repository).where(_processing(now))
            claim = claim.where(q.c.repository.not_in(busy_repos))
        result = await conn.execute(
            claim.values(
                available=False,
                processing_expires=now + lease_seconds,
                retries_remaining=q.c.retries_remaining - 1,
                claimed_by=manager_id,
                state_id=str(uuid.uuid4()),
                start_by=None,  # started: QUEUE_TTL no longer applies
            ).returning(*q.c)
        )
        return [_row_to_item(row._mapping) for row in result.all()]

    @rerun_if_connection_lost
    async def next_available_at(self, after: float) -> float | None:
        """The earliest time after `after` at which a waiting item becomes available or a
        lease runs out (the scheduler's timer); None when there is none."""
        async with self.db.read() as conn:
            waiting = await conn.scalar(
                select(func.min(q.c.available_after)).where(
                    q.c.available.is_(True),
                    q.c.retries_remaining > 0,
                    q.c.available_after > after,
                )
            )
            leased = await conn.scalar(
                select(func.min(q.c.processing_expires)).where(
                    q.c.available.is_(False), q.c.processing_expires > after
                )
            )
        times = [t for t in (waiting, leased) if t is not None]
        return min(times) if times else None

    async def extend_processing_many(
        self, leases: list[tuple[int, float]], conn: SqlConnection | None = None
    ) -> list[bool]:
        """Push many leases out (item id, seconds from now), one UPDATE per distinct
        length, in `conn`'s transaction or one of their own; for each, whether the item
        was still being processed."""
        if conn is None:
            async with self.db.write() as own:
                return await self.extend_processing_many(leases, own)
        now = time.time()
        extended: set[int] = set()
        by_seconds: dict[float, list[int]] = defaultdict(list)
        for item_id, seconds in leases:
            by_seconds[seconds].append(item_id)
        for seconds, ids in by_seconds.items():
            if len(ids) == 1:  # a lone lease (every write on SQLite): no IN list to expand
                one = {"item_id": ids[0], "expires": now + seconds}
                if (await conn.execute(_EXTEND_ONE, one)).rowcount:
                    extended.add(ids[0])
                continue
            many = {"item_ids": ids, "expires": now + seconds}
            extended.update((await conn.execute(_EXTEND_MANY, many)).scalars())
        return [item_id in extended for item_id, _ in leases]

    async def incomplete(
        self,
        conn: SqlConnection,
        item_id: int,
        *,
        restore_retry: bool = False,
        retry_after: float = 0,
    ) -> None:
        """Give the item back for another attempt (Quay's `incomplete`)."""
        values: dict[str, object] = {
            "available": True,
            "available_after": time.time() + retry_after,
            "processing_expires": None,
            "claimed_by": None,
            "state_id": str(uuid.uuid4()),
        }
        if restore_retry:
            values["retries_remaining"] = q.c.retries_remaining + 1
        await conn.execute(update(q).where(q.c.id == item_id).values(**values))

    async def due_to_expire(self, now: float, limit: int) -> list[QueueItem]:
        """Up to `limit` items still waiting for their first attempt past their start_by
        (QUEUE_TTL), the longest overdue first: a range of ix_queue_start_by, which holds
        no row when no build is due."""
        async with self.db.read() as conn:
            rows = await conn.execute(due_to_expire_statement(now, limit))
            return [_row_to_item(r._mapping) for r in rows.all()]

    async def expire(self, conn: SqlConnection, item_id: int, now: float) -> bool:
        """Remove the item if it is still waiting past its start_by: False when an attempt
        was claimed meanwhile (the claim clears start_by) or it went otherwise."""
        result = await conn.execute(
            delete(q).where(q.c.id == item_id, q.c.available.is_(True),
                            q.c.start_by <= now)
        )
        return bool(result.rowcount)

    async def complete(self, conn: SqlConnection, item_id: int) -> None:
        await conn.execute(delete(q).where(q.c.id == item_id))

    async def remove_for_build(self, conn: SqlConnection, build_id: str) -> bool:
        result = await conn.execute(delete(q).where(q.c.build_id == build_id))
        return bool(result.rowcount)

    @rerun_if_connection_lost
    async def get_for_build(self, build_id: str) -> QueueItem | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(q).where(q.c.build_id == build_id))).first()
        return _row_to_item(row._mapping) if row else None

    @rerun_if_connection_lost
    async def count_queued(self, namespace: str) -> int:
        # each submit's queue-limit check: an index count, bounded by the limit
        async with self.db.lookup() as conn:
            n = await conn.scalar(select(func.count()).where(q.c.namespace == namespace))
        return int(n or 0)

    @rerun_if_connection_lost
    async def why_waiting(
        self,
        build_ids: list[str],
        *,
        namespace_limits: Mapping[str, int] | None = None,
        workers_per_manager: int | None = None,
        conn: SqlConnection | None = None,
    ) -> dict[str, WaitReason]:
        """For each of these builds still waiting in the queue, why: one statement
        whatever the number of builds (a page of a build list asks for its waiting ones).

        Every submit's 201 asks this (in the submit's transaction, `conn`), so it is one
        round trip, and on SQLite a lookup: its subqueries go by index, the widest
        counting the leases in flight (at most the workers running)."""
        if not build_ids:
            return {}
        limits = dict(namespace_limits or {})
        statement = _why_waiting_statement(bool(limits), workers_per_manager is not None)
        params: dict[str, Any] = {"now": time.time(), "build_ids": build_ids}
        if limits:
            params["limited"] = list(limits)
        if conn is None:
            async with self.db.lookup() as own:
                items = (await own.execute(statement, params)).all()
        else:  # the submit's own transaction (manager/admission.py): no second connection
            items = (await conn.execute(statement, params)).all()
        now = params["now"]
        reasons: dict[str, WaitReason] = {}
        for item in items:
            build_id, namespace = str(item.build_id), str(item.namespace)
            if item.available_after > now:
                reasons[build_id] = WaitReason("retry", until=float(item.available_after))
            elif item.running is not None:
                reasons[build_id] = WaitReason("repository", str(item.running), running=True)
            elif item.head is not None and item.head != build_id:
                reasons[build_id] = WaitReason("repository", str(item.head))
            elif namespace in limits and int(item.namespace_busy) >= limits[namespace]:
                reasons[build_id] = WaitReason("namespace", limit=limits[namespace])
            elif workers_per_manager is not None and \
                    int(item.total) >= workers_per_manager * max(1, int(item.managers)):
                reasons[build_id] = WaitReason("workers", limit=int(item.total))
            else:
                reasons[build_id] = WaitReason("next")
        return reasons

    @rerun_if_connection_lost
    async def claimed_by(self, manager_id: str) -> list[QueueItem]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(q).where(q.c.available.is_(False), q.c.claimed_by == manager_id)
            )
            return [_row_to_item(r._mapping) for r in rows.all()]


async def _lock_for_claim(
    conn: SqlConnection, chosen: list[int], limits: Mapping[str, int], now: float
) -> list[int]:
    """PostgreSQL, several managers claiming at once: which of `chosen` this transaction
    may take. Three guards, all held until commit:

    - `FOR UPDATE SKIP LOCKED` on the items: two managers never take the same item, and
      neither waits for the other.
    - a transaction-level advisory lock per repository (`pg_try_advisory_xact_lock`, never
      waiting): row locks alone cannot keep the one-build-per-repository rule, because two
      transactions may pick *different* items of one repository (their snapshots do not see
      each other's uncommitted claims). Whoever holds the repository's lock claims in it;
      the others skip it this round. The caller's UPDATE then re-checks "nothing of this
      repository is processing" in a snapshot taken after the lock, so a claim committed
      just before is seen. A hash collision between repositories only defers one claim.
    - NAMESPACE_LIMITS: the limited namespaces are locked (waiting, in sorted order, so no
      deadlock) and their running counts taken again, so concurrent claims cannot
      overshoot a limit together."""
    rows = (
        await conn.execute(
            select(q.c.id, q.c.namespace, q.c.repository)
            .where(q.c.id.in_(chosen), _claimable(now))
            .order_by(q.c.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    locked: dict[int, tuple[str, str]] = {}
    if rows:
        # every repository's try-lock in one statement (under a backlog, a round trip
        # each would be most of what a claim costs)
        keys = [_lock_name("repo", repository) for _, _, repository in rows]
        taken = {int(p): bool(t) for p, t in await conn.execute(_TRY_LOCKS, {"names": keys})}
        for position, (item_id, namespace, repository) in enumerate(rows, start=1):
            if taken.get(position):
                locked[int(item_id)] = (str(namespace), str(repository))
    limited = sorted({ns for ns, _ in locked.values() if ns in limits})
    if limited:
        for ns in limited:
            await conn.execute(select(func.pg_advisory_xact_lock(_lock_key("ns", ns))))
        counted = await conn.execute(
            select(q.c.namespace, func.count())
            .where(_processing(now), q.c.namespace.in_(limited))
            .group_by(q.c.namespace)
        )
        room = {ns: limits[ns] - int(n) for ns, n in counted.all()}
        kept: dict[int, tuple[str, str]] = {}
        for item_id in [i for i in chosen if i in locked]:
            ns = locked[item_id][0]
            if ns in limits:
                if room.get(ns, limits[ns]) <= 0:
                    continue
                room[ns] = room.get(ns, limits[ns]) - 1
            kept[item_id] = locked[item_id]
        locked = kept
    return [i for i in chosen if i in locked]


def _lock_name(kind: str, name: str) -> str:
    return f"slipway-queue:{kind}:{name}"


def _lock_key(kind: str, name: str):  # type: ignore[no-untyped-def]
    """A 64-bit advisory lock key for `kind:name` (hashtextextended: no extension needed)."""
    return func.hashtextextended(_lock_name(kind, name), 0)


# The try-locks of a claim's repositories, the same keys as _lock_key's, by position in
# `names`: one statement text whatever their number, not a function call per lock to
# build and compile at every claim
_TRY_LOCKS = text(
    "SELECT t.position, pg_try_advisory_xact_lock(hashtextextended(t.name, 0)) "
    "FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS t(name, position)"
)


def _round_robin_candidates(now: float, room: Mapping[str, int], last: str | None,
                            count: int) -> Select[Any]:
    """The first `count` claimable items in round-robin order: the head of each waiting
    repository with nothing in progress, ranked within its namespace by age; then rank
    first, namespaces in name order starting after `last`. A namespace at its limit is
    left out and a limited one offers no more than its `room`.

    Ordered and cut in the database: otherwise a backlog of thousands would be read whole
    into the manager at every claim."""
    busy_repos = select(q.c.repository).where(_processing(now))
    heads = (
        select(func.min(q.c.id))
        .where(_claimable(now), q.c.repository.not_in(busy_repos))
        .group_by(q.c.repository)
    )
    rank = func.row_number().over(partition_by=q.c.namespace, order_by=q.c.id)
    ranked_query = select(q.c.id, q.c.namespace, rank.label("rank")).where(q.c.id.in_(heads))
    full = [ns for ns, free in room.items() if free <= 0]
    if full:
        ranked_query = ranked_query.where(q.c.namespace.not_in(full))
    ranked = ranked_query.subquery()
    query = select(ranked.c.id, ranked.c.namespace)
    limited = {ns: free for ns, free in room.items() if free > 0}
    if limited:
        query = query.where(ranked.c.rank <= case(limited, value=ranked.c.namespace,
                                                  else_=ranked.c.rank))
    order: list[ColumnElement[Any]] = [ranked.c.rank, ranked.c.namespace]
    if last is not None:  # namespaces after `last` first in each round (false sorts first)
        order.insert(1, ranked.c.namespace <= last)
    return query.order_by(*order).limit(count)
