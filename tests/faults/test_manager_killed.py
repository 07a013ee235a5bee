"""A manager killed with SIGKILL (kill -9) while builds run: no shutdown code runs, its
API stops answering mid-request, the builds it held are found by the others.

- Two managers as production runs them (API + gRPC on one PostgreSQL and one Redis),
  builds submitted through both APIs over a few seconds, workers that outlive the
  manager which started them (pods): every accepted build completes exactly once, the
  survivor is ready, no API answered 5xx.
- Three managers whose workers die with them (the local executor's): the killed
  manager's builds are retried on the others, and every log line it acknowledged is kept.
  (Moved here from tests/manager/test_manager_multi.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from support.fault_figures import FaultFigures
from support.manager_cluster import Cluster
from support.postgres_server import postgres_available
from support.serving_cluster import Accepted, ServingCluster, ServingManager, attempts_lost

from slipway.domain.phases import Phase

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed")

BUILDS = 12
SUBMIT_EVERY_S = 0.25  # 12 builds over 3 s
BUILD_SECONDS = 2.0
LIMIT_S = 60.0  # safety limits on waits; not timing assertions


async def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _started_by(cluster: ServingCluster, manager: ServingManager) -> set[str]:
    return {build_id for build_id, run in cluster.workers.runs.items()
            if manager.executor_name in run.executor_calls}


async def test_a_manager_killed_mid_way_costs_no_accepted_build(
    tmp_path: Path, fault_figures: FaultFigures
) -> None:
    cluster = ServingCluster(tmp_path, managers=2, build_seconds=BUILD_SECONDS)
    try:
        await cluster.start()
        victim, survivor = cluster.managers
        submitter = cluster.submitter
        assert submitter is not None

        async def submit_all() -> list[Accepted | None]:
            submits = []
            for i in range(BUILDS):  # alternately through each manager's API
                submits.append(asyncio.create_task(submitter.submit(i, f"repo{i}")))
                await asyncio.sleep(SUBMIT_EVERY_S)
            return list(await asyncio.gather(*submits))

        submitting = asyncio.create_task(submit_all())
        # killed once it runs builds, while submits still come
        await _until(lambda: len(_started_by(cluster, victim)) >= 1,
                     "the victim to start a build")
        await victim.kill()
        victims = _started_by(cluster, victim)
        accepted = [a for a in await submitting if a is not None]
        build_ids = [a.build_id for a in accepted]
        records = await cluster.records(build_ids)
        completions = await cluster.completions_logged(build_ids)
        survivor_ready = await survivor.ready()
        fault_figures({
            "accepted": len(accepted),
            "complete": sum(r.phase is Phase.COMPLETE for r in records.values()),
            "attempts_lost": attempts_lost(records),
            "victim_builds": len(victims),
            "retried_builds": sum(len(r.attempts) > 1 for r in records.values()),
            "no_answer": submitter.answers["no answer"],
            "status_5xx": submitter.count(lambda s: s >= 500),
            "survivor_ready": survivor_ready,
        })

        assert len(accepted) == BUILDS, submitter.answers  # each was taken by an API
        assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: BUILDS}, (
            cluster.logs())
        assert set(completions.values()) == {1}, completions  # each completed once
        assert survivor_ready, survivor.log_tail()
        assert submitter.count(lambda s: s >= 500) == 0, submitter.answers
    finally:
        await cluster.close()


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    clusters: list[Cluster] = []

    async def make(managers: int, **kw: object) -> Cluster:
        cluster = Cluster(tmp_path, managers, **kw)  # type: ignore[arg-type]
        clusters.append(cluster)
        return await cluster.start()

    yield make
    for cluster in clusters:
        await cluster.close()


async def test_kill_9_of_a_manager_retries_its_builds_elsewhere(
    cluster_factory: Callable[..., Awaitable[Cluster]], fault_figures: FaultFigures
) -> None:
    cluster = await cluster_factory(
        3, build_seconds=3.0, manager={"JOB_REGISTRATION_TIMEOUT": 5},
        executor={"SETUP_TIME": 5},
    )
    victim = cluster.managers[0]
    build_ids = await cluster.submit(24)

    def victim_has_acked_lines() -> bool:
        return len({a["build_id"] for a in victim.journal("acked.jsonl")}) >= 2

    await cluster.wait_for(victim_has_acked_lines, "the victim to run builds")
    victim.kill()
    acked = victim.journal("acked.jsonl")
    victim_builds = {s["build_id"] for s in victim.journal("starts.jsonl")}

    records = await cluster.wait_all_final(build_ids)
    retried = [b for b in victim_builds if len(records[b].attempts) > 1]
    fault_figures({
        "accepted": len(build_ids),
        "complete": sum(r.phase is Phase.COMPLETE for r in records.values()),
        "attempts_lost": attempts_lost(records),
        "victim_builds": len(victim_builds),
        "retried_builds": len(retried),
    })
    assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: len(build_ids)}
    survivors = {m.manager_id for m in cluster.managers[1:]}
    for build_id in retried:
        # the victim's attempt ended as lost; the build completed on another manager
        record = records[build_id]
        assert record.attempts[-1].outcome == "completed"
        assert all(a.outcome is not None for a in record.attempts), record.attempts
    assert len(retried) >= 2
    last_starts = {s["build_id"]: s["manager_id"] for s in cluster.starts()}
    assert all(last_starts[b] in survivors for b in retried)
    # every log line the manager acknowledged before the kill is still there
    for line in acked:
        assert line["message"] in await cluster.log_messages(line["build_id"])
