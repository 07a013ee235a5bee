"""Build triggers in SQL (docs/triggers.md): the trigger rows, their credentials sealed with
the build-secrets key, their webhook deliveries, and the claims of scheduled rebuilds.

What a trigger means (filters, tag templates, the events it builds) is `triggers/`'s;
this module only keeps it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipway.store.database import Database
from slipway.store.errors import TriggerNameTaken
from slipway.store.interfaces import Triggers
from slipway.store.records import StatusRow, StoredTrigger, TriggerDelivery
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import commit_statuses as cs
from slipway.store.schema import trigger_deliveries as d
from slipway.store.schema import triggers as t
from slipway.store.secrets import BuildSecretStore

# deliveries kept per trigger (the oldest go as new ones arrive)
DELIVERIES_KEPT = 50


class TriggerStore:
    def __init__(self, db: Database, secrets: BuildSecretStore) -> None:
        self.db = db
        self.secrets = secrets

    def _row(self, row: Any) -> StoredTrigger:
        names = sorted(k for k, v in self.secrets.unseal(row.sealed, f"trigger {row.id}")
                       .items() if v) if row.sealed else []
        return StoredTrigger(
            id=row.id, namespace=row.namespace, repository=row.repository, name=row.name,
            kind=row.kind, git_url=row.git_url, enabled=bool(row.enabled),
            spec=dict(row.spec or {}), created=row.created, updated=row.updated,
            next_run=row.next_run, base_digests=dict(row.base_digests or {}),
            credential_names=names,
        )

    @rerun_if_connection_lost
    async def create(self, namespace: str, repository: str, name: str, kind: str,
                     git_url: str, spec: Mapping[str, Any], credentials: Mapping[str, str],
                     next_run: float | None, enabled: bool = True) -> StoredTrigger:
        now = time.time()
        trigger_id = str(uuid.uuid4())
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(t).values(
                    id=trigger_id, namespace=namespace, repository=repository, name=name,
                    kind=kind, git_url=git_url, enabled=enabled, spec=dict(spec),
                    sealed=self.secrets.seal(credentials), created=now, updated=now,
                    next_run=next_run, base_digests={},
                ))
        except IntegrityError:
            raise TriggerNameTaken(name) from None
        found = await self.get(trigger_id)
        assert found is not None
        return found

    @rerun_if_connection_lost
    async def get(self, trigger_id: str) -> StoredTrigger | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t).where(t.c.id == trigger_id))).first()
        return None if row is None else self._row(row)

    @rerun_if_connection_lost
    async def list_for_repository(self, namespace: str, repository: str
                                  ) -> list[StoredTrigger]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(t).where(t.c.namespace == namespace, t.c.repository == repository)
                .order_by(t.c.name))).all()
        return [self._row(r) for r in rows]

    @rerun_if_connection_lost
    async def all_enabled(self) -> list[StoredTrigger]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t).where(t.c.enabled.is_(True)))).all()
        return [self._row(r) for r in rows]

    async def credentials(self, trigger_id: str) -> dict[str, str]:
        """The trigger's secrets ({} when it is gone); SecretsUnavailable with another key."""
        async with self.db.read() as conn:
            sealed = await conn.scalar(select(t.c.sealed).where(t.c.id == trigger_id))
        return {} if not sealed else self.secrets.unseal(sealed, f"trigger {trigger_id}")

    @rerun_if_connection_lost
    async def update(self, trigger_id: str, *, name: str, kind: str, git_url: str,
                     spec: Mapping[str, Any], enabled: bool,
                     credentials: Mapping[str, str], next_run: float | None) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(update(t).where(t.c.id == trigger_id).values(
                    name=name, kind=kind, git_url=git_url, spec=dict(spec), enabled=enabled,
                    sealed=self.secrets.seal(credentials), updated=time.time(),
                    next_run=next_run))
        except IntegrityError:
            raise TriggerNameTaken(name) from None

    @rerun_if_connection_lost
    async def delete(self, trigger_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(d).where(d.c.trigger_id == trigger_id))
            await conn.execute(delete(t).where(t.c.id == trigger_id))

    # --- scheduled rebuilds and the base-image watch --------------------------------------

    @rerun_if_connection_lost
    async def due_runs(self, now: float) -> list[StoredTrigger]:
        """Enabled triggers whose scheduled rebuild is due."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t).where(
                t.c.next_run <= now, t.c.enabled.is_(True)))).all()
        return [self._row(r) for r in rows]

    @rerun_if_connection_lost
    async def claim_run(self, trigger_id: str, due: float, following: float | None) -> bool:
        """Move the trigger's `next_run` from `due` to `following`: True for the one
        manager whose compare-and-set wins, which starts the scheduled build."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(t).where(t.c.id == trigger_id, t.c.next_run == due,
                                t.c.enabled.is_(True)).values(next_run=following))
        return bool(result.rowcount)

    @rerun_if_connection_lost
    async def swap_base_digests(self, trigger_id: str, seen: Mapping[str, str],
                                now: Mapping[str, str]) -> bool:
        """Record `now` as the base images' digests if they were still `seen`: True for
        the one manager that moved them (it starts the build)."""
        async with self.db.write() as conn:
            # the row locked until the swap commits (PostgreSQL; SQLite has one writer):
            # a second manager reads the digests this one wrote
            current = await conn.scalar(select(t.c.base_digests).where(t.c.id == trigger_id)
                                        .with_for_update())
            if dict(current or {}) != dict(seen):
                return False
            await conn.execute(update(t).where(t.c.id == trigger_id)
                               .values(base_digests=dict(now)))
        return True

    # --- deliveries ------------------------------------------------------------------------

    @rerun_if_connection_lost
    async def record_delivery(self, trigger_id: str, delivery_key: str | None, event: str,
                              outcome: str, reason: str, ref: str | None = None,
                              commit_sha: str | None = None,
                              build_id: str | None = None) -> int | None:
        """The delivery's row, its id; None when `delivery_key` was received before (the
        unique key decides between concurrent deliveries of the same id)."""
        try:
            async with self.db.write() as conn:
                if delivery_key is not None and await conn.scalar(select(d.c.id).where(
                        d.c.trigger_id == trigger_id, d.c.delivery_key == delivery_key)):
                    return None
                result = await conn.execute(insert(d).values(
                    trigger_id=trigger_id, delivery_key=delivery_key, event=event,
                    received=time.time(), outcome=outcome, reason=reason, ref=ref,
                    commit_sha=commit_sha, build_id=build_id))
                key = result.inserted_primary_key
                keep = select(d.c.id).where(d.c.trigger_id == trigger_id).order_by(
                    d.c.id.desc()).limit(DELIVERIES_KEPT)
                await conn.execute(delete(d).where(
                    d.c.trigger_id == trigger_id, d.c.id.not_in(keep.scalar_subquery())))
        except IntegrityError:
            return None
        return None if key is None else int(key[0])

    @rerun_if_connection_lost
    async def finish_delivery(self, delivery_id: int, outcome: str, reason: str,
                              build_id: str | None) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(d).where(d.c.id == delivery_id).values(
                outcome=outcome, reason=reason, build_id=build_id))

    @rerun_if_connection_lost
    async def find_delivery(self, trigger_id: str, delivery_key: str) -> TriggerDelivery | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(d).where(
                d.c.trigger_id == trigger_id, d.c.delivery_key == delivery_key))).first()
        return None if row is None else _delivery(row)

    @rerun_if_connection_lost
    async def deliveries(self, trigger_id: str, limit: int = 20) -> list[TriggerDelivery]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(d).where(d.c.trigger_id == trigger_id)
                                       .order_by(d.c.id.desc()).limit(limit))).all()
        return [_delivery(r) for r in rows]

    # --- commit statuses (triggers/status.py) ------------------------------------------------

    @rerun_if_connection_lost
    async def track_status(self, build_id: str, trigger_id: str) -> None:
        """Post the build's commit status from now on, as its phase moves."""
        async with self.db.write() as conn:
            await conn.execute(insert(cs).values(
                build_id=build_id, trigger_id=trigger_id, posted=None, wanted="",
                tries=0, due=time.time()))

    @rerun_if_connection_lost
    async def statuses_due(self, now: float, limit: int = 100) -> list[StatusRow]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(cs).where(cs.c.due <= now).order_by(cs.c.due)
                                       .limit(limit))).all()
        return [StatusRow(r.build_id, r.trigger_id, r.posted, r.tries) for r in rows]

    @rerun_if_connection_lost
    async def claim_status(self, row: StatusRow, state: str, due_next: float,
                           now: float) -> bool:
        """Take the posting of `state` (compare-and-set on what `row` read): True for the
        one manager that posts it; the row is due again at `due_next` unless it is
        posted before."""
        posted = cs.c.posted.is_(None) if row.posted is None else cs.c.posted == row.posted
        async with self.db.write() as conn:
            result = await conn.execute(update(cs).where(
                cs.c.build_id == row.build_id, posted, cs.c.tries == row.tries,
                cs.c.due <= now).values(wanted=state, tries=row.tries + 1,
                                                due=due_next))
        return bool(result.rowcount)

    @rerun_if_connection_lost
    async def status_posted(self, build_id: str, state: str, final: bool,
                            now: float) -> None:
        """Posted: a final state ends the row (nothing more to post: the table holds only
        the builds still moving), another leaves it due from `now` on (its next phase is
        posted when it comes)."""
        async with self.db.write() as conn:
            if final:
                await conn.execute(delete(cs).where(cs.c.build_id == build_id))
                return
            await conn.execute(update(cs).where(cs.c.build_id == build_id).values(
                posted=state, tries=0, last_error=None, due=now))

    @rerun_if_connection_lost
    async def status_failed(self, build_id: str, error: str, give_up: bool) -> None:
        """A failed post; `give_up`: the row goes (the manager logged why)."""
        async with self.db.write() as conn:
            if give_up:
                await conn.execute(delete(cs).where(cs.c.build_id == build_id))
                return
            await conn.execute(update(cs).where(cs.c.build_id == build_id).values(
                last_error=error[:1000]))

    @rerun_if_connection_lost
    async def status_of(self, build_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(cs).where(cs.c.build_id == build_id))).first()
        return None if row is None else {"posted": row.posted, "tries": row.tries,
                                         "error": row.last_error}


def _delivery(row: Any) -> TriggerDelivery:
    return TriggerDelivery(id=row.id, trigger_id=row.trigger_id, event=row.event,
                    received=row.received, outcome=row.outcome, reason=row.reason,
                    ref=row.ref, commit_sha=row.commit_sha, build_id=row.build_id)


def _keeps_the_protocol(store: TriggerStore) -> Triggers:
    return store  # mypy checks here that TriggerStore keeps the Triggers protocol
