"""The build queue's contract (store/interfaces.py `BuildQueue`), with the build records and
logs it comes with, run against every backend behind the `Store` protocol: slipway's own
tables on SQLite and on PostgreSQL (store/queue.py), and Quay's `queueitem` and
`repositorybuild` as Quay's web app fills them (quay/store.py over quay/queue.py).

Each backend enqueues as its users do: slipway's admission writes a record and its item
(support/enqueue.py); in Quay mode, Quay's web app does (support/quay_db.py start_build).

Where Quay mode differs on purpose, the test says so and asserts each side (`Backend`'s
flags, all False for slipway's tables):

- `oldest_first`: claims go oldest first across namespaces, as Quay's own manager claims
  (quay/queue.py); slipway's tables go round robin across namespaces.
- `name_only`: a QueueItem's `repository` is the repository's name alone; slipway's
  tables give what admission put, `<namespace>/<name>`.
- `alive_only`: `count_queued` counts as Quay's num_alive_jobs does: items with retries
  left, whose queue name starts with `<queue>/<namespace>` (a longer namespace too).
- `polls`: `next_available_at` answers at most POLL_INTERVAL_S ahead whatever is queued
  (Quay's web app cannot notify a listener).
- `no_wait_reasons`: `why_waiting` answers nothing (Quay's UI shows its builds waiting).
- `any_row_is_alive`: `extend_processing_many` says True for any item still in the table
  (Quay's cancel deletes it); slipway's tables, only for an item being processed.

What only one backend has stays in its own file: Quay's columns, state_id, minimum lease
extension, bodies and other queues (tests/quay/test_quay_queue.py); several SQL stores
sharing one write transaction (tests/store/test_shared_transactions.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from support.enqueue import record_and_queue
from support.postgres_server import PostgresServer
from support.quay_db import SECRET_KEY, QuayDatabase
from support.redis_server import RedisServer

from slipway.domain.phases import Phase
from slipway.store.database_kind import STANDALONE_TABLES
from slipway.store.facade import SqlStore
from slipway.store.interfaces import BuildQueue, Store
from slipway.store.records import LogEntry, NewBuild, QueueItem, WaitReason
from slipway.store.schema import metadata

BACKENDS = ["sqlite", "postgresql", "quay"]
SLIPWAY_TABLES = [table.name for table in metadata.sorted_tables]


class Backend:
    """A `Store` of one backend, and what a test needs besides the protocol: enqueue a
    build as the backend's users do, a second manager's store on the same database, and
    a lease run out at once."""

    def __init__(self, kind: str, store: Store[Any],
                 submit: Callable[[str, str], Awaitable[str]],
                 another: Callable[[], Awaitable[Store[Any]]],
                 expire_lease: Callable[[int], Awaitable[None]]) -> None:
        self.kind = kind
        self.store = store
        self.submit_build = submit
        self.another = another
        self.expire_lease = expire_lease
        quay = kind == "quay"
        self.oldest_first = self.name_only = self.alive_only = quay
        self.polls = self.no_wait_reasons = self.any_row_is_alive = quay

    @property
    def queue(self) -> BuildQueue[Any]:
        return self.store.queue

    async def submit(self, namespace: str = "ns", repo: str = "repo") -> str:
        """A new build of `namespace/repo`, queued; its id."""
        return await self.submit_build(namespace, repo)

    async def claim(self, manager: str = "m1", *, limit: int = 10, lease: float = 60,
                    **options: Any) -> list[QueueItem]:
        return await self.queue.claim(manager, limit=limit, lease_seconds=lease, **options)

    async def complete(self, item_id: int) -> None:
        async with self.store.write() as conn:
            await self.queue.complete(conn, item_id)

    async def incomplete(self, item_id: int, **options: Any) -> None:
        async with self.store.write() as conn:
            await self.queue.incomplete(conn, item_id, **options)

    def repository(self, namespace: str, name: str) -> str:
        """What a claimed item's `repository` is for `namespace/name`."""
        return name if self.name_only else f"{namespace}/{name}"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """BUILDLOGS_REDIS of the Quay backend."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a migrated SQLite database is kept, to copy for each test (a copy costs
    less than migrating a new one); the first test migrates it."""
    return tmp_path_factory.mktemp("queue-contract") / "template.db"


@pytest.fixture(scope="module")
def sql_database(postgres: PostgresServer) -> str:
    """One PostgreSQL database for the module's SQL backend, emptied after each test."""
    return postgres.create_database()


@pytest.fixture(scope="module")
def quay_database(postgres: PostgresServer) -> QuayDatabase:
    """One Quay database for the module, emptied after each test."""
    return QuayDatabase(postgres.create_database()).create()


def _empty(uri: str, tables: list[str]) -> None:
    """TRUNCATE is cheaper than a new database and its migrations for each test."""
    with psycopg.connect(uri, autocommit=True) as conn:
        names = ", ".join(f'"{table}"' for table in tables)
        conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    stores: list[Store[Any]] = []
    kind = str(request.param)

    if kind == "quay":
        from slipway.config.loader import parse_config
        from slipway.quay.store import QuayStore

        quay: QuayDatabase = request.getfixturevalue("quay_database")
        redis: RedisServer = request.getfixturevalue("redis_server")
        storage = tmp_path / "quay-storage"
        storage.mkdir()
        config = parse_config({
            "DB_URI": quay.uri, "DATA_DIR": str(tmp_path / "data"),
            "SERVER_HOSTNAME": quay.server_hostname,
            "BUILDLOGS_REDIS": {"host": "127.0.0.1", "port": redis.port},
            "DISTRIBUTED_STORAGE_CONFIG": {"local_us": ["LocalStorage",
                                                        {"storage_path": str(storage)}]},
            "DATABASE_SECRET_KEY": SECRET_KEY,
        }).config
        repositories: set[tuple[str, str]] = set()

        async def open_store() -> Store[Any]:
            stores.append(await QuayStore(config).open())
            return stores[-1]

        async def submit(namespace: str, name: str) -> str:
            if (namespace, name) not in repositories:
                quay.repository(namespace, name)
                repositories.add((namespace, name))
            return quay.start_build(namespace, name).uuid

        async def expire(item_id: int) -> None:
            past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
            quay.execute("UPDATE queueitem SET processing_expires = %s WHERE id = %s",
                         past, item_id)

        # (the tables of slipway's own database only are not in Quay's)
        uri, tables = quay.uri, ["queueitem", "user",
                                 *(t for t in SLIPWAY_TABLES if t not in STANDALONE_TABLES)]
    else:
        if kind == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            if not template.exists():
                await (await SqlStore(f"sqlite:///{template}").open()).close()
            path = shutil.copy(template, tmp_path)
            uri, tables = f"sqlite:///{path}", []
        else:
            uri, tables = request.getfixturevalue("sql_database"), SLIPWAY_TABLES

        async def open_store() -> Store[Any]:
            stores.append(await SqlStore(uri).open())
            return stores[-1]

        async def submit(namespace: str, name: str) -> str:
            return (await record_and_queue(stores[0], NewBuild(
                namespace=namespace, repository=name, tags=["latest"],
                registry="r:5000"))).id

        async def expire(item_id: int) -> None:
            async with stores[0].write() as conn:
                await conn.execute(
                    text("UPDATE slipway_build_queue SET processing_expires = :t "
                         "WHERE id = :id"), {"t": time.time() - 1, "id": item_id})

    try:
        yield Backend(kind, await open_store(), submit, open_store, expire)
    finally:
        for store in stores:
            await store.close()
        if tables:
            _empty(uri, tables)


def build_ids(items: list[QueueItem]) -> list[str]:
    return [item.build_id for item in items]


# --- what a claim takes ------------------------------------------------------------------


async def test_a_new_build_waits_with_three_retries(backend: Backend) -> None:
    build_id = await backend.submit()
    record = await backend.store.builds.get(build_id)
    assert record is not None and record.phase is Phase.WAITING
    item = await backend.queue.get_for_build(build_id)
    assert item is not None and item.retries_remaining == 3
    assert (item.build_id, item.namespace) == (build_id, "ns")
    assert item.processing_expires is None


async def test_a_claim_counts_an_attempt_and_takes_a_lease(backend: Backend) -> None:
    build_id = await backend.submit("acme", "app")
    waiting = await backend.queue.get_for_build(build_id)
    assert waiting is not None

    (item,) = await backend.claim(limit=5, lease=530)

    assert item.build_id == build_id and item.id == waiting.id
    assert (item.namespace, item.repository) == ("acme", backend.repository("acme", "app"))
    assert item.retries_remaining == 2  # what is left after this attempt, as in Quay
    assert item.processing_expires is not None
    assert 520 < item.processing_expires - time.time() <= 530
    assert item.state_id != waiting.state_id  # a claim is a write: a new state_id
    # leased: nobody else gets it
    assert await backend.claim("m2", limit=5, lease=530) == []


async def test_a_lost_lease_is_claimed_again_one_retry_less_until_none_are_left(
    backend: Backend,
) -> None:
    build_id = await backend.submit()
    (first,) = await backend.claim(limit=1, lease=0.01)
    await asyncio.sleep(0.05)
    (again,) = await backend.claim("m2", limit=1)
    assert (again.id, again.build_id) == (first.id, build_id)
    assert again.retries_remaining == 1
    assert await backend.claim("m3", limit=1) == []  # leased again

    await backend.expire_lease(again.id)
    (last,) = await backend.claim("m3", limit=1)
    assert last.retries_remaining == 0
    await backend.expire_lease(last.id)
    assert await backend.claim("m4", limit=1) == []  # no retries left: never


# --- leases ------------------------------------------------------------------------------


async def test_a_lease_pushed_out_in_the_callers_transaction_is_kept(backend: Backend) -> None:
    await backend.submit()
    (item,) = await backend.claim(limit=1, lease=0.01)
    async with backend.store.write() as conn:
        assert await backend.queue.extend_processing_many([(item.id, 60)], conn) == [True]
    await asyncio.sleep(0.05)
    assert await backend.claim("m2", limit=1) == []


async def test_leases_pushed_out_together_say_which_items_were_still_processing(
    backend: Backend,
) -> None:
    for repo in ("a", "b", "c"):
        await backend.submit(repo=repo)
    items = await backend.claim(limit=3, lease=0.01)
    assert len(items) == 3
    await backend.complete(items[2].id)  # it ends: its lease is no longer anyone's
    leases = [(items[0].id, 60.0), (items[1].id, 0.01), (items[2].id, 60.0), (999, 60.0)]
    assert await backend.queue.extend_processing_many(leases) == [True, True, False, False]
    await asyncio.sleep(0.05)
    # the one pushed out by 60 s stays claimed; the other's short lease ran out
    again = await backend.claim("m2", limit=3)
    assert [i.id for i in again] == [items[1].id]


async def test_pushing_out_the_lease_of_an_item_put_back(backend: Backend) -> None:
    await backend.submit()
    (item,) = await backend.claim(limit=1)
    await backend.incomplete(item.id, retry_after=3600)
    alive = await backend.queue.extend_processing_many([(item.id, 60)])
    assert alive == [backend.any_row_is_alive]
    assert await backend.claim(limit=1) == []  # it still waits for its retry_after


# --- putting back, retries ---------------------------------------------------------------


async def test_put_back_with_and_without_the_retry_restored(backend: Backend) -> None:
    await backend.submit()
    (item,) = await backend.claim(limit=1)
    await backend.incomplete(item.id, restore_retry=True)  # no retry_after: at once
    (item,) = await backend.claim(limit=1)
    assert item.retries_remaining == 2  # the refunded attempt
    await backend.incomplete(item.id, retry_after=0)
    (item,) = await backend.claim(limit=1)
    assert item.retries_remaining == 1  # this time the attempt counted


async def test_no_retries_left_is_never_claimed(backend: Backend) -> None:
    await backend.submit()
    for expected in (2, 1, 0):
        (item,) = await backend.claim(limit=1)
        assert item.retries_remaining == expected
        await backend.incomplete(item.id)
    assert await backend.claim(limit=1) == []


async def test_an_item_put_back_waits_for_its_retry_after(backend: Backend) -> None:
    nothing = await backend.queue.next_available_at(time.time())
    if backend.polls:
        assert nothing is not None and nothing <= time.time() + 1.0
    else:
        assert nothing is None
    build_id = await backend.submit()
    (item,) = await backend.claim(limit=1)
    put_back = time.time()
    await backend.incomplete(item.id, retry_after=3600)

    assert await backend.claim(limit=1) == []  # available_after
    waiting = await backend.queue.get_for_build(build_id)
    assert waiting is not None and waiting.retries_remaining == 2
    now = time.time()
    at = await backend.queue.next_available_at(now)
    assert at is not None and now < at
    if backend.polls:  # Quay's web app cannot say when: a look within a second
        assert at <= time.time() + 1.0
    else:
        assert at == pytest.approx(put_back + 3600, abs=5)


# --- done, removed -----------------------------------------------------------------------


async def test_complete_removes_the_item(backend: Backend) -> None:
    build_id = await backend.submit()
    (item,) = await backend.claim(limit=1)
    await backend.complete(item.id)
    assert await backend.queue.get_for_build(build_id) is None
    assert await backend.claim(limit=1) == []


async def test_every_operation_tolerates_a_removed_item(backend: Backend) -> None:
    """A build cancelled while it runs: its item is gone (in Quay mode, Quay's cancel
    deletes it) and the manager's writes to it must not fail."""
    build_id = await backend.submit()
    (item,) = await backend.claim(limit=1)
    async with backend.store.write() as conn:
        assert await backend.queue.remove_for_build(conn, build_id) is True
    async with backend.store.write() as conn:
        assert await backend.queue.remove_for_build(conn, build_id) is False
    assert await backend.queue.get_for_build(build_id) is None
    await backend.incomplete(item.id, restore_retry=True)
    await backend.complete(item.id)
    assert await backend.queue.extend_processing_many([(item.id, 600)]) == [False]
    assert await backend.claim(limit=1) == []


# --- order: one build per repository, namespaces -----------------------------------------


async def test_one_build_per_repository_at_a_time_oldest_first(backend: Backend) -> None:
    a1 = await backend.submit(repo="a")
    a2 = await backend.submit(repo="a")
    b1 = await backend.submit(repo="b")
    claimed = await backend.claim(limit=10)
    assert build_ids(claimed) == [a1, b1]
    assert await backend.claim("m2", limit=10) == []  # ns/a is running
    await backend.complete(claimed[0].id)
    assert build_ids(await backend.claim(limit=10)) == [a2]


async def test_claims_go_round_robin_across_namespaces(backend: Backend) -> None:
    many = [await backend.submit("many", f"r{i}") for i in range(4)]
    one = await backend.submit("one")
    claimed = await backend.claim(limit=3)
    if backend.oldest_first:
        # Quay's order: by id, as Quay's own manager claims (quay/queue.py)
        assert build_ids(claimed) == many[:3]
    else:
        # FIFO alone would take three of "many"; round robin lets "one" in
        assert build_ids(claimed) == [many[0], one, many[1]]


async def test_a_namespace_limit_counts_running_builds(backend: Backend) -> None:
    capped = [await backend.submit("capped", f"r{i}") for i in range(3)]
    free = await backend.submit("free", "c")
    limits = {"capped": 2}
    first = await backend.claim(limit=10, namespace_limits=limits)
    assert sorted(build_ids(first)) == sorted([*capped[:2], free])
    assert await backend.claim("m2", limit=10, namespace_limits=limits) == []
    assert await backend.claim("m2", limit=10, namespace_limits={"capped": 1}) == []
    # without the limit, the rest of the namespace runs
    assert build_ids(await backend.claim("m2", limit=10)) == [capped[2]]


# --- counts, reasons ---------------------------------------------------------------------


async def test_count_queued_counts_a_namespaces_items(backend: Backend) -> None:
    for repo in ("a", "b", "c"):
        await backend.submit("acme", repo)
    await backend.submit("other", "x")
    await backend.submit("acme2", "y")
    longer = 1 if backend.alive_only else 0  # Quay's ILIKE '<queue>/acme%' takes acme2 in
    assert await backend.queue.count_queued("acme") == 3 + longer
    assert await backend.queue.count_queued("other") == 1
    assert await backend.queue.count_queued("nobody") == 0
    claimed = await backend.claim(limit=10)
    assert len(claimed) == 5
    assert await backend.queue.count_queued("acme") == 3 + longer  # running ones count
    done = next(i for i in claimed if i.namespace == "acme")
    await backend.complete(done.id)
    assert await backend.queue.count_queued("acme") == 2 + longer
    # an item on its last attempt: Quay counts only items with retries left
    last = next(i for i in claimed if i.namespace == "other")
    for _ in range(2):
        await backend.expire_lease(last.id)
        (last,) = await backend.claim(limit=1)
    assert last.retries_remaining == 0
    assert await backend.queue.count_queued("other") == (0 if backend.alive_only else 1)


async def test_why_waiting_names_each_reason(backend: Backend) -> None:
    """One build per repository, the namespace's limit, all workers busy, a retry, next:
    what a waiting build's status.waiting_for is made from."""
    running = await backend.submit("ns", "one")
    small_running = await backend.submit("small", "x")
    claimed = await backend.claim(limit=2)
    assert {i.build_id for i in claimed} == {running, small_running}
    behind_running = await backend.submit("ns", "one")
    small_waiting = await backend.submit("small", "y")
    other = await backend.submit("other", "z")
    ahead = await backend.submit("ns", "two")
    behind_ahead = await backend.submit("ns", "two")
    ids = [behind_running, small_waiting, other, ahead, behind_ahead, running]
    reasons = await backend.queue.why_waiting(ids, namespace_limits={"small": 1},
                                              workers_per_manager=2)
    if backend.no_wait_reasons:  # Quay's builds wait in Quay's queue, shown `waiting`
        assert reasons == {}
        return
    assert running not in reasons  # it runs: it does not wait
    assert reasons[behind_running] == WaitReason("repository", running, running=True)
    assert reasons[behind_ahead] == WaitReason("repository", ahead)
    assert reasons[small_waiting] == WaitReason("namespace", limit=1)
    assert reasons[other] == WaitReason("workers", limit=2)
    roomy = await backend.queue.why_waiting([other, small_waiting], workers_per_manager=10)
    assert roomy == {other: WaitReason("next"), small_waiting: WaitReason("next")}
    (again,) = [i for i in claimed if i.build_id == small_running]
    await backend.incomplete(again.id, retry_after=300)
    [retry] = (await backend.queue.why_waiting([small_running])).values()
    assert retry.kind == "retry" and retry.until is not None and retry.until > time.time()


# --- several managers claiming at once (each its own store: engine and pool) -------------


async def test_concurrent_claims_never_share_an_item_or_a_repository(
    backend: Backend,
) -> None:
    stores = [backend.store, *[await backend.another() for _ in range(3)]]
    submitted = [await backend.submit(f"ns{i % 3}", f"r{i % 7}") for i in range(60)]
    seen: list[str] = []
    for _ in range(40):
        rounds = await asyncio.gather(*(
            s.queue.claim(f"m{n}", limit=5, lease_seconds=60)
            for n, s in enumerate(stores) for _ in range(2)
        ))
        claimed = [item for items in rounds for item in items]
        if not claimed and len(seen) == len(submitted):
            break
        # one item per repository at a time, each item to one manager only
        repos = [(item.namespace, item.repository) for item in claimed]
        assert len(repos) == len(set(repos)), repos
        seen.extend(item.build_id for item in claimed)
        for item in claimed:
            await backend.complete(item.id)
    assert sorted(seen) == sorted(submitted)  # every build claimed, none twice


async def test_concurrent_claims_respect_a_namespace_limit(backend: Backend) -> None:
    stores = [backend.store, *[await backend.another() for _ in range(3)]]
    for i in range(12):
        await backend.submit("capped", f"r{i}")
    rounds = await asyncio.gather(*(
        s.queue.claim(f"m{n}", limit=5, lease_seconds=60, namespace_limits={"capped": 3})
        for n, s in enumerate(stores)
    ))
    assert sum(len(items) for items in rounds) == 3


# --- logs of a claimed build -------------------------------------------------------------


async def _running_build(backend: Backend) -> str:
    """A claimed build: in Quay mode slipway keeps a record and log of those only."""
    build_id = await backend.submit()
    assert build_ids(await backend.claim(limit=1)) == [build_id]
    return build_id


async def test_log_entries_are_numbered_in_order(backend: Backend) -> None:
    logs = backend.store.logs
    build_id = await _running_build(backend)
    assert await logs.append(build_id, [LogEntry("a"), LogEntry("b")]) == 2
    assert await logs.append(build_id, [LogEntry("c", "command")]) == 3
    total, entries = await logs.read(build_id, start=1)
    assert total == 3
    assert [(e.message, e.type) for e in entries] == [("b", None), ("c", "command")]
    assert "datetime" in entries[0].data
    assert await logs.count(build_id) == 3
    total, entries = await logs.read(build_id, start=0, limit=2)
    assert total == 3 and [e.message for e in entries] == ["a", "b"]
    with pytest.raises(KeyError):
        await logs.append("no-such-build", [LogEntry("x")])
    assert await logs.read("no-such-build") == (0, [])


async def test_a_long_run_of_log_entries_is_stored_whole_and_in_order(
    backend: Backend,
) -> None:
    """Long runs take PostgreSQL's COPY path: text that needs escaping comes back as is."""
    from slipway.store.log_rows import COPY_FROM_ROWS

    logs = backend.store.logs
    build_id = await _running_build(backend)
    awkward = ["tab\there", "back\\slash \\N", "", "quote ' and \" ünïcode", "\\."]
    lines = [LogEntry(awkward[i % len(awkward)] + f" #{i}", None, {"phase": "building",
                                                                   "id": f"l{i}"})
             for i in range(COPY_FROM_ROWS * 3)]
    lines[5] = LogEntry("STEP 2/2: RUN make", "command", {"progressDetail": {"current": 1}})
    assert await logs.append(build_id, [LogEntry("before")]) == 1
    assert await logs.append(build_id, lines) == 1 + len(lines)
    total, entries = await logs.read(build_id, start=1)
    assert total == 1 + len(lines)
    assert [(e.message, e.type) for e in entries] == [(e.message, e.type) for e in lines]
    assert [{k: v for k, v in e.data.items() if k != "datetime"} for e in entries] == [
        e.data for e in lines]
