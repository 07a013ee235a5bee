"""A (re)started manager cleans up what managers that are gone left behind."""

from __future__ import annotations

from pathlib import Path

from support.manager_harness import Harness, ScriptedExecutor

from slipway.domain.phases import Phase
from slipway.manager.jobs import JobStage, JobState
from slipway.manager.keys import deadline_key, job_key


def _job(build_id: str, job_id: str, stage: JobStage, worker_id: str) -> JobState:
    return JobState(job_id=job_id, build_id=build_id, namespace="ns", queue_id=1,
                    manager_id="gone-manager", retries_remaining=2, attempt=1, stage=stage,
                    executor="default", worker_id=worker_id)


async def test_stale_keys_are_removed_and_orphan_workers_stopped(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    await harness.start([executor])
    # nothing of ours gets scheduled while we plant what a dead manager left behind
    harness.manager.scheduler.paused = True
    orch = harness.orchestrator
    try:
        ended = await harness.submit(repository="ended")
        live = await harness.submit(repository="live")
        async with harness.store.db.write() as conn:
            await harness.store.builds.update(conn, ended, phase=Phase.COMPLETE, job_id="old")
            await harness.store.builds.update(
                conn, live, phase=Phase.BUILDING, job_id="current"
            )
        stale = _job(ended, "old", JobStage.RUNNING, "orphan-worker")
        alive = _job(live, "current", JobStage.RUNNING, "live-worker")
        superseded = _job(live, "earlier", JobStage.SCHEDULED, "superseded-worker")
        for job in (stale, alive, superseded):
            await orch.set(job_key(job.job_id), job.dumps(), expiration=300)
        await orch.set(deadline_key("old"), stale.dumps(), expiration=300)
        await orch.set(deadline_key("vanished"), stale.dumps(), expiration=300)
        await orch.set(deadline_key("current"), alive.dumps(), expiration=300)

        await harness.manager.reconciler.at_start()

        # the ended build's and the superseded attempt's keys and workers are gone
        assert set(await orch.get_prefixed("job/")) == {"job/current"}
        assert set(await orch.get_prefixed("deadline/")) == {"deadline/current"}
        assert sorted(executor.stopped) == ["orphan-worker", "superseded-worker"]
    finally:
        await harness.stop()
