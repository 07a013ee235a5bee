"""Several manager processes on one PostgreSQL and one Redis (docs/architecture.md,
"Reliability and security"):
every build completes exactly once, and Redis or PostgreSQL restarting loses or strands no
build (a killed manager: tests/faults/test_manager_killed.py).

Each manager is a real process (support/manager_process.py) running SlipwayServer with
in-process workers that speak the real gRPC protocol to a random manager on every call.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.enqueue import enqueue
from support.manager_cluster import Cluster
from support.postgres_server import PostgresServer, postgres_available
from support.redis_server import RedisServer

from slipway.domain.phases import Phase
from slipway.manager.control import BuildControl
from slipway.manager.keys import WAKE_KEY
from slipway.orchestrator.base import KeyEvent
from slipway.orchestrator.redis import RedisOrchestrator
from slipway.store.facade import SqlStore
from slipway.store.records import NewBuild
from slipway.tokens.jwt import InvalidToken, TokenService, TokenType
from slipway.tokens.keys import load_or_create

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[object]:
    clusters: list[Cluster] = []

    async def make(managers: int, **kw: object) -> Cluster:
        cluster = Cluster(tmp_path, managers, **kw)  # type: ignore[arg-type]
        clusters.append(cluster)
        return await cluster.start()

    yield make
    for cluster in clusters:
        await cluster.close()


async def test_a_token_minted_by_one_manager_verifies_on_another(tmp_path: Path) -> None:
    server = PostgresServer()
    server.start()
    try:
        store = await SqlStore(server.uri).open()
        services = []
        for name in ("a", "b"):
            key = load_or_create(tmp_path / name)
            await store.keys.publish(key.kid, key.public_pem)
            services.append(TokenService(key, "builder.test", store.keys.get))
        a, b = services
        assert a.key.kid != b.key.kid
        token = a.mint(TokenType.JOB, "build-1", "job-1", 60)
        claims = await b.verify(token, TokenType.JOB)
        assert (claims.build_id, claims.job_id) == ("build-1", "job-1")
        await store.keys.retire(a.key.kid)
        fresh = TokenService(load_or_create(tmp_path / "c"), "builder.test", store.keys.get)
        with pytest.raises(InvalidToken, match="unknown key"):
            await fresh.verify(a.mint(TokenType.JOB, "build-1", "job-2", 60), TokenType.JOB)
        await store.close()
    finally:
        server.close()


async def test_three_managers_run_200_builds_each_exactly_once(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    # nothing fails here, so a generous heartbeat expiry: on a small, busy test machine a
    # stalled worker must not be mistaken for a lost one (which would rightly retry it)
    cluster: Cluster = await cluster_factory(
        3, build_seconds=0.05, manager={"HEARTBEAT_EXPIRY": 15}
    )
    # 200 builds in 150 repositories: some repositories hold two, which must run one
    # after the other
    build_ids = await cluster.submit(200, repositories=150)
    records = await cluster.wait_all_final(build_ids)

    assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: 200}
    starts = cluster.starts()
    started = Counter(s["build_id"] for s in starts)
    assert started == Counter(build_ids)  # each build's worker started once: never claimed twice
    for build_id, record in records.items():
        phases = await cluster.phases_logged(build_id)
        assert phases.count("complete") == 1 and phases[-1] == "complete"
        assert phases.count("build-scheduled") == 1
        assert [a.outcome for a in record.attempts] == ["completed"]
    # the work was shared: every manager started workers
    assert {s["manager_id"] for s in starts} == {m.manager_id for m in cluster.managers}
    # one build per repository at a time: attempts of one repository never overlap
    by_repo: dict[str, list[tuple[float, float]]] = {}
    for record in records.values():
        (attempt,) = record.attempts
        by_repo.setdefault(record.repository, []).append((attempt.started, attempt.ended))
    for spans in by_repo.values():
        spans.sort()
        for (_, end), (begin, _) in itertools.pairwise(spans):
            assert begin >= end


async def wait_not_ready(cluster: Cluster, part: str) -> None:
    await cluster.wait_for(
        lambda: all(m.readiness().get(part) is False for m in cluster.managers),
        f"the managers to report the {part} not ready",
    )


async def recover_and_complete_each_once(cluster: Cluster, build_ids: list[str]) -> None:
    """Every manager ready again, and every build completed exactly once."""
    await cluster.wait_for(
        lambda: all(m.readiness() == {"database": True, "orchestrator": True}
                    for m in cluster.managers),
        "the managers to recover",
    )
    records = await cluster.wait_all_final(build_ids)
    assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: len(build_ids)}
    for build_id in build_ids:
        assert (await cluster.phases_logged(build_id)).count("complete") == 1


async def test_redis_restart_loses_no_build(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = await cluster_factory(2, build_seconds=2.0)
    build_ids = await cluster.submit(16)
    await cluster.wait_for(lambda: len(cluster.starts()) >= 4, "builds to start")
    cluster.redis.kill()  # no persistence: every job key, deadline and lock is gone
    await wait_not_ready(cluster, "orchestrator")
    cluster.redis.start()
    await recover_and_complete_each_once(cluster, build_ids)
    # nothing is left claimed in the queue
    assert cluster.store is not None
    assert await cluster.store.queue.count_queued("ns0") == 0


async def test_postgres_restart_loses_no_build(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = await cluster_factory(2, build_seconds=2.0)
    build_ids = await cluster.submit(16)
    await cluster.wait_for(lambda: len(cluster.starts()) >= 4, "builds to start")
    assert cluster.store is not None
    cluster.postgres.kill()  # a crash: committed data survive, connections are cut
    await wait_not_ready(cluster, "database")
    await asyncio.sleep(0.5)
    cluster.postgres.start()
    await recover_and_complete_each_once(cluster, build_ids)
    for m in cluster.managers:
        assert m.proc is not None and m.proc.poll() is None  # still running


async def test_a_submit_wakes_managers_in_other_processes(tmp_path: Path) -> None:
    """The API side (no scheduler of its own) touches WAKE_KEY; a manager elsewhere,
    subscribed through its own Redis connection, hears it at once."""
    redis = RedisServer()
    redis.start()
    store = await SqlStore(f"sqlite:///{tmp_path}/api.db").open()
    api_side = RedisOrchestrator(redis.config())
    manager_side = RedisOrchestrator(redis.config())
    try:
        await api_side.start()
        await manager_side.start()
        woken = asyncio.Event()

        async def on_wake(event: KeyEvent) -> None:
            woken.set()

        manager_side.subscribe(WAKE_KEY, on_wake)
        control = BuildControl(store, api_side)
        await enqueue(control, NewBuild(namespace="ns", repository="r", tags=["latest"],
                                         registry="registry.test:5000"))
        await asyncio.wait_for(woken.wait(), 20)  # a safety limit, not a timing test
    finally:
        await api_side.close()
        await manager_side.close()
        await store.close()
        redis.close()
