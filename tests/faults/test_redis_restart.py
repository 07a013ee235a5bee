"""A Redis restarted empty while builds run (issue 25): the managers put back the keys of
the attempts they run, from their memory and the database, so no running build loses
its attempt; a build cancelled while Redis was away, or just after it came back, still
ends cancelled; only an attempt whose worker is really gone ends (heartbeat lost) and
its build is retried.

Two real manager processes share a private PostgreSQL and a private redis-server
(support/manager_cluster.py), their workers speaking the real gRPC protocol to either
manager and heartbeating as a real worker does (support/manager_process.py, here through
support/silenceable_manager_process.py, whose workers can also go silent). Redis is
killed (no persistence: every key is lost) and a new, empty one is started on its port.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from support.fault_figures import FaultFigures
from support.manager_cluster import Cluster
from support.postgres_server import postgres_available
from support.silenceable_manager_process import silence, silence_cluster

from slipway.domain.phases import Phase
from slipway.manager.control import CancelOutcome
from slipway.store.records import BuildRecord

pytestmark = [
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not installed"),
    pytest.mark.timeout(300),  # a bound on each test, not a measure
]

# A generous heartbeat expiry: on a small, busy machine a stalled worker must not be
# mistaken for a lost one (which would rightly retry it). What is tested is that the keys
# come back, not how fast a key expires.
MANAGER = {"HEARTBEAT_EXPIRY": 10}
# long enough that the builds running when Redis goes are still running when it is back
BUILD_SECONDS = 6.0
MANAGERS = 2
WITHIN = 180.0  # the longest a wait may take before the test fails (a hang, not a timing)

MakeCluster = Callable[[], Awaitable[Cluster]]


@pytest.fixture
def silence_dir(tmp_path: Path) -> Path:
    return tmp_path / "silenced"


@pytest.fixture
async def make_cluster(
    tmp_path: Path, silence_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MakeCluster]:
    silence_cluster(monkeypatch, silence_dir)
    clusters: list[Cluster] = []

    async def make() -> Cluster:
        cluster = Cluster(tmp_path, MANAGERS, build_seconds=BUILD_SECONDS, manager=MANAGER)
        clusters.append(cluster)
        return await cluster.start()

    yield make
    for cluster in clusters:
        await cluster.close()


async def wait_building(cluster: Cluster, build_ids: list[str], count: int) -> list[str]:
    """Wait until at least `count` builds are in `building`; those builds."""
    found: list[str] = []

    async def enough() -> bool:
        records = await cluster.records(build_ids)
        found[:] = [b for b, r in records.items() if r.phase is Phase.BUILDING]
        return len(found) >= count

    await cluster.wait_for(enough, f"{count} builds to be building", within=WITHIN)
    return found


async def kill_redis(cluster: Cluster) -> None:
    """kill -9 of the Redis (no persistence: its keys are gone), once every manager has
    noticed."""
    cluster.redis.kill()
    await cluster.wait_for(
        lambda: all(m.readiness().get("orchestrator") is False for m in cluster.managers),
        "the managers to see Redis gone", within=WITHIN,
    )


async def wait_attempts_closed(cluster: Cluster, build_ids: list[str]) -> dict[
    str, BuildRecord
]:
    """Every build final, and each of its attempts closed (a cancelled build is final at
    once; its attempt's end follows)."""
    records = await cluster.wait_all_final(build_ids, within=WITHIN)

    async def closed() -> bool:
        records.update(await cluster.records(build_ids))
        return all(not a.is_open for r in records.values() for a in r.attempts)

    await cluster.wait_for(closed, "every attempt to be closed", within=WITHIN)
    return records


async def assert_managers_ready(cluster: Cluster) -> None:
    await cluster.wait_for(
        lambda: all(m.readiness() == {"database": True, "orchestrator": True}
                    for m in cluster.managers),
        "the managers to be ready again", within=WITHIN,
    )
    for m in cluster.managers:
        assert m.proc is not None and m.proc.poll() is None  # still running


def attempts_lost(records: dict[str, BuildRecord]) -> int:
    """Attempts that ended for another reason than the build's own end."""
    return sum(1 for r in records.values() for a in r.attempts
               if a.outcome not in ("completed", "cancelled"))


def figures_of(records: dict[str, BuildRecord]) -> dict[str, object]:
    phases = Counter(r.phase for r in records.values())
    return {"accepted": len(records), "complete": phases[Phase.COMPLETE],
            "cancelled": phases[Phase.CANCELLED], "attempts_lost": attempts_lost(records)}


async def assert_completed_once(cluster: Cluster, build_id: str) -> None:
    assert (await cluster.phases_logged(build_id)).count("complete") == 1


async def test_a_redis_restarted_empty_costs_no_running_build_its_attempt(
    make_cluster: MakeCluster, fault_figures: FaultFigures,
) -> None:
    cluster = await make_cluster()
    build_ids = await cluster.submit(16)
    running = await wait_building(cluster, build_ids, 8)

    await kill_redis(cluster)
    cluster.redis.start()  # the same port, no data

    records = await wait_attempts_closed(cluster, build_ids)
    await assert_managers_ready(cluster)
    fault_figures(figures_of(records))
    assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: len(build_ids)}
    for build_id in build_ids:
        # one attempt each: none was ended and retried
        assert [a.outcome for a in records[build_id].attempts] == ["completed"], (
            build_id, build_id in running, records[build_id].attempts)
        await assert_completed_once(cluster, build_id)
    assert attempts_lost(records) == 0


async def test_a_build_cancelled_while_redis_was_away_or_just_back_ends_cancelled(
    make_cluster: MakeCluster, fault_figures: FaultFigures,
) -> None:
    cluster = await make_cluster()
    assert cluster.control is not None
    build_ids = await cluster.submit(8)
    during_outage, just_after, *_ = await wait_building(cluster, build_ids, 4)

    await kill_redis(cluster)
    # the database takes the cancel; the cancel key cannot be written
    assert await cluster.control.cancel(during_outage) is CancelOutcome.CANCELLED
    cluster.redis.start()
    assert await cluster.control.cancel(just_after) is CancelOutcome.CANCELLED

    records = await wait_attempts_closed(cluster, build_ids)
    await assert_managers_ready(cluster)
    fault_figures(figures_of(records))
    cancelled = {during_outage, just_after}
    for build_id in build_ids:
        record = records[build_id]
        if build_id in cancelled:
            assert record.phase is Phase.CANCELLED
            # its attempt ended with the cancel: the worker was stopped, not lost
            assert [a.outcome for a in record.attempts] == ["cancelled"], record.attempts
            assert "complete" not in await cluster.phases_logged(build_id)
        else:
            assert record.phase is Phase.COMPLETE
            assert [a.outcome for a in record.attempts] == ["completed"], record.attempts
            await assert_completed_once(cluster, build_id)
    assert attempts_lost(records) == 0


async def test_a_worker_gone_during_the_outage_ends_its_attempt_once_and_is_retried(
    make_cluster: MakeCluster, silence_dir: Path, fault_figures: FaultFigures,
) -> None:
    cluster = await make_cluster()
    build_ids = await cluster.submit(6)
    gone, *_ = await wait_building(cluster, build_ids, 3)
    job_id = (await cluster.records([gone]))[gone].job_id
    assert job_id is not None

    await kill_redis(cluster)
    silence(silence_dir, job_id)  # its machine dies while Redis is away
    await cluster.wait_for(
        lambda: any(f"worker of job {job_id} went silent" in m.log_tail(100_000)
                    for m in cluster.managers),
        "the worker to go silent", within=WITHIN,
    )
    cluster.redis.start()

    records = await wait_attempts_closed(cluster, build_ids)
    await assert_managers_ready(cluster)
    fault_figures(figures_of(records))
    assert Counter(r.phase for r in records.values()) == {Phase.COMPLETE: len(build_ids)}
    # its key was put back, its heartbeats did not come: it ended once, and the build
    # ran again
    assert [a.outcome for a in records[gone].attempts] == ["heartbeat_lost", "completed"]
    for build_id in build_ids:
        if build_id != gone:
            assert [a.outcome for a in records[build_id].attempts] == ["completed"]
        await assert_completed_once(cluster, build_id)
    assert attempts_lost(records) == 1
