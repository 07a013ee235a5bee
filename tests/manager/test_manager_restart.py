"""kill -9 of the embedded default's manager (SQLite, orchestrator in memory), then its
restart: the one manager that could have held the build takes it back at once
(docs/architecture.md, "One attempt"), rather than leaving it `building` with no worker
until its queue lease runs out.

The manager is a real process (support/manager_process.py: SlipwayServer, whose workers
are in-process tasks speaking the real gRPC protocol, so they die with it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.manager_cluster import ManagerProcess
from support.registry import free_port

from slipway.domain.phases import Phase
from slipway.manager.admission import store_new_build
from slipway.store.facade import SqlStore
from slipway.store.records import BuildRecord, NewBuild

WAIT_LIMIT_S = 60.0  # guards against a hang; not a timing assertion


def embedded_config(manager: ManagerProcess) -> dict[str, Any]:
    """`slipway serve`'s embedded default: no DB_URI (SQLite in DATA_DIR), no
    ORCHESTRATOR (in memory), the local executor."""
    return {
        "DATA_DIR": str(manager.dir / "data"),
        "GRPC_LISTEN_ADDRESS": manager.address,
        "SERVER_HOSTNAME": "registry.test:5000",
        "BUILD_MANAGER": ["ephemeral", {
            "EXECUTORS": [{"EXECUTOR": "local", "NAME": "null", "SETUP_TIME": 10}],
        }],
    }


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[ManagerProcess]:
    process = ManagerProcess(0, tmp_path, free_port())
    yield process
    await asyncio.to_thread(process.stop)


async def wait_record(store: SqlStore, build_id: str, done: Any, what: str,
                      manager: ManagerProcess) -> BuildRecord:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while True:
        record = await store.builds.get(build_id)
        if record is not None and done(record):
            return record
        assert time.monotonic() < deadline, f"{what} never happened:\n{manager.log_tail()}"
        await asyncio.sleep(0.1)


async def test_a_restarted_manager_takes_back_its_build_at_once(
    manager: ManagerProcess,
) -> None:
    config = embedded_config(manager)
    # the first life's worker stays in `building` until the kill
    manager.start(config, {"SLIPWAY_TEST_MANAGERS": manager.address,
                           "SLIPWAY_TEST_BUILD_SECONDS": "3600"})
    await asyncio.to_thread(manager.wait_ready)
    first_life = manager.manager_id
    store = await SqlStore(f"sqlite:///{manager.dir}/data/slipway.db").open()
    try:
        record = await store_new_build(store, NewBuild(
            namespace="acme", repository="app", tags=["latest"], registry="registry.test:5000",
            archive_url="http://127.0.0.1:9/context.tar"))
        await wait_record(store, record.id, lambda r: r.phase is Phase.BUILDING,
                          "the build reaching `building`", manager)

        manager.kill()  # kill -9: no shutdown code runs
        (running,) = (await store.builds.get(record.id)).attempts  # type: ignore[union-attr]
        assert running.is_open

        manager.start(config, {"SLIPWAY_TEST_MANAGERS": manager.address,
                               "SLIPWAY_TEST_BUILD_SECONDS": "0.2"})
        await asyncio.to_thread(manager.wait_ready)
        assert manager.manager_id != first_life
        final = await wait_record(store, record.id, lambda r: r.phase.is_final,
                                  "the build's end", manager)

        assert final.phase is Phase.COMPLETE, final
        first, second = final.attempts
        # the first attempt ended as taken back at the restart (not `manager_lost`, which
        # only the queue lease running out would have said), and counts as a try
        assert (first.attempt, first.outcome, first.counted) == (1, "manager_restarted", None)
        assert first.worker_id == running.worker_id
        assert (second.attempt, second.outcome) == (2, "completed")
        assert first.ended is not None and first.ended <= second.started
        # the second attempt was started by the restarted manager, right after the first
        # was given back: the worker starts in order, the second from the new process
        starts = manager.journal("starts.jsonl")
        assert [s["manager_id"] for s in starts] == [first_life, manager.manager_id]
        # what the build's log tells the user, in order
        _, entries = await store.logs.read(record.id)
        messages = [e.message for e in entries]
        taken_back = messages.index(
            "Attempt 1 of 3 failed: the build manager restarted while it ran; the build "
            "will be retried")
        assert messages[taken_back + 1] == "waiting"
        assert "Attempt 2 of 3: worker started on executor null" in messages[taken_back:]
        assert not any("lost with the build manager" in m for m in messages)
        assert final.retries_remaining == 1
    finally:
        await store.close()
