"""Scheduling: registration timeouts, executor fallback, retry thresholds, fairness, limits."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from support.manager_harness import Harness, ScriptedExecutor
from support.processes import process_alive

from slipway.domain.phases import Phase
from slipway.executors.base import WorkerSpec
from slipway.executors.local.executor import LocalExecutor
from slipway.manager import scheduler as scheduler_module


@pytest.fixture(autouse=True)
def no_backstop_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scheduling must follow events; a timer would hide a missed wake-up."""
    monkeypatch.setattr(scheduler_module, "BACKSTOP_SECONDS", 3600.0)


async def test_worker_that_never_registers_gets_three_attempts(tmp_path: Path) -> None:
    never = tmp_path / "never-registers.py"
    never.write_text("import time\nwhile True:\n    time.sleep(1)\n")
    harness = Harness(tmp_path, manager={"EXECUTORS": [{
        "EXECUTOR": "local", "SETUP_TIME": 1,
        "BUILDER_BINARY_LOCATION": f"{sys.executable} {never}",
    }]})
    executor = LocalExecutor(harness.executor_configs()[0], "m")
    pids: list[int] = []
    original = executor.start_worker

    async def recording_start(spec: WorkerSpec) -> str:
        worker_id = await original(spec)
        pids.append(int(worker_id))
        return worker_id

    executor.start_worker = recording_start  # type: ignore[method-assign]
    await harness.start([executor])
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        assert record.phase is Phase.INTERNAL_ERROR
        assert record.error == (
            "the build worker never registered with the build manager (after 3 attempts)")
        assert len(pids) == 3 and len(set(pids)) == 3
        assert [a.outcome for a in record.attempts] == ["never_registered"] * 3
        assert record.retries_remaining == 0
        await harness.wait_for(lambda: not any(process_alive(pid) for pid in pids))
        # the executor counts a worker until asyncio has reaped it, a moment after it died
        deadline = asyncio.get_running_loop().time() + 10
        while (running := await executor.running_count()) != 0:
            assert asyncio.get_running_loop().time() < deadline, f"{running} still counted"
            await asyncio.sleep(0.02)
        messages = [e.message for e in await harness.log(build_id)]
        assert sum("will be retried" in m for m in messages) == 2
        assert await harness.store.queue.get_for_build(build_id) is None
    finally:
        await harness.stop()


async def test_failing_executor_falls_through_to_the_next(tmp_path: Path) -> None:
    harness = Harness(tmp_path, manager={"EXECUTORS": [
        {"EXECUTOR": "local", "NAME": "broken"},
        {"EXECUTOR": "local", "NAME": "working"},
    ]})
    first, second = harness.executor_configs()
    broken = ScriptedExecutor(first, "m", fail="quota exceeded for project builds")
    working = ScriptedExecutor(second, "m")
    await harness.start([broken, working])
    try:
        build_id = await harness.submit()
        record = await harness.wait_started(build_id)
        assert record.executor == "working"
        assert record.retries_remaining == 2  # the failed executor did not cost an attempt
    finally:
        await harness.stop()


async def test_every_executor_failing_uses_the_attempts_with_their_messages(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path)
    broken = ScriptedExecutor(harness.executor_configs()[0], "m", fail="API says no")
    await harness.start([broken])
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR)
        assert record.error == (
            "no executor could start a build worker (after 3 attempts): default: API says no")
    finally:
        await harness.stop()


async def test_seed_failover_kubernetes_then_ec2(tmp_path: Path) -> None:
    """The seed: kubernetes with MINIMUM_RETRY_THRESHOLD 1, then ec2 with 0. Attempts 1
    and 2 (2 and 1 retries left) go to kubernetes, the last one (0 left) to ec2."""
    harness = Harness(tmp_path, manager={"EXECUTORS": [
        {"EXECUTOR": "local", "NAME": "kubernetes", "MINIMUM_RETRY_THRESHOLD": 1,
         "SETUP_TIME": 1},
        {"EXECUTOR": "local", "NAME": "ec2", "MINIMUM_RETRY_THRESHOLD": 0, "SETUP_TIME": 1},
    ]})
    k8s_cfg, ec2_cfg = harness.executor_configs()
    k8s, ec2 = ScriptedExecutor(k8s_cfg, "m"), ScriptedExecutor(ec2_cfg, "m")
    await harness.start([k8s, ec2])
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR)
        assert [a.executor for a in record.attempts] == ["kubernetes", "kubernetes", "ec2"]
        assert len(k8s.started) == 2 and len(ec2.started) == 1
        # the phase is final first; each worker is stopped just after (end first, clean up after)
        await harness.wait_for(lambda: len(k8s.stopped) == 2 and len(ec2.stopped) == 1)
        assert sorted(k8s.stopped) == ["kubernetes-1", "kubernetes-2"]
        assert ec2.stopped == ["ec2-1"]
    finally:
        await harness.stop()


async def test_namespace_whitelist_and_staged_rollout(tmp_path: Path) -> None:
    harness = Harness(tmp_path, manager={"ALLOWED_WORKER_COUNT": 5, "EXECUTORS": [
        {"EXECUTOR": "local", "NAME": "vip", "NAMESPACE_WHITELIST": ["gold"]},
        {"EXECUTOR": "local", "NAME": "nobody", "STAGED_ROLLOUT": 0.0},
        {"EXECUTOR": "local", "NAME": "everyone"},
    ]})
    vip, nobody, everyone = (ScriptedExecutor(c, "m") for c in harness.executor_configs())
    await harness.start([vip, nobody, everyone])
    try:
        gold = await harness.submit(namespace="gold")
        other = await harness.submit(namespace="other")
        assert (await harness.wait_started(gold)).executor == "vip"
        assert (await harness.wait_started(other)).executor == "everyone"
        assert nobody.started == []
    finally:
        await harness.stop()


async def test_allowed_worker_count_and_one_build_per_repository(tmp_path: Path) -> None:
    harness = Harness(tmp_path, manager={"ALLOWED_WORKER_COUNT": 2})
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    await harness.start([executor])
    try:
        same_repo = [await harness.submit(repository="app") for _ in range(2)]
        others = [await harness.submit(repository=f"r{i}") for i in range(3)]
        await harness.wait_for(lambda: len(executor.started) == 2)
        await asyncio.sleep(0.3)  # give a wrong scheduler the chance to start more
        started = [s.build_id for s in executor.started]
        assert len(started) == 2
        assert same_repo[0] in started and same_repo[1] not in started  # FIFO within a repo
        assert others[0] in started
        # finishing one frees a slot and the next eligible build starts at once
        await harness.control.cancel(same_repo[0])
        await harness.wait_for(lambda: len(executor.started) == 3)
        assert executor.started[2].build_id == same_repo[1]
    finally:
        await harness.stop()


async def test_namespaces_round_robin_and_namespace_limits(tmp_path: Path) -> None:
    harness = Harness(tmp_path, manager={"ALLOWED_WORKER_COUNT": 4,
                                         "NAMESPACE_LIMITS": {"busy": 1}})
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    harness.manager_paused = True
    await harness.start([executor])
    harness.manager.scheduler.paused = True
    try:
        busy = [await harness.submit(namespace="busy", repository=f"b{i}") for i in range(3)]
        big = [await harness.submit(namespace="big", repository=f"g{i}") for i in range(5)]
        small = [await harness.submit(namespace="small", repository="s0")]
        harness.manager.scheduler.paused = False
        harness.manager.scheduler.wake()
        await harness.wait_for(lambda: len(executor.started) == 4)
        await asyncio.sleep(0.3)
        started = {s.build_id for s in executor.started}
        assert len(started) == 4
        # round robin: every namespace got a turn before big got its second slot;
        # busy is capped at 1 by NAMESPACE_LIMITS
        assert len(started & set(busy)) == 1
        assert small[0] in started
        assert started & set(big) == {big[0], big[1]}
    finally:
        await harness.stop()


async def test_clean_shutdown_gives_builds_back_with_the_attempt_refunded(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path)
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    await harness.start([executor])
    build_id = await harness.submit()
    await harness.wait_phase(build_id, Phase.BUILD_SCHEDULED)
    await harness.stop()
    assert executor.stopped == ["default-1"]
    store = await type(harness.store)(harness.config.DB_URI).open()
    try:
        record = await store.builds.get(build_id)
        item = await store.queue.get_for_build(build_id)
        assert record is not None and record.phase is Phase.WAITING
        assert item is not None and item.retries_remaining == 3
        claimed = await store.queue.claim("other-manager", limit=5, lease_seconds=60)
        assert [i.build_id for i in claimed] == [build_id]
    finally:
        await store.close()
