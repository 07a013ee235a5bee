"""The watch of Quay's queue (quay/queue_watch.py): a build Quay's web app enqueues wakes
the scheduler at once, without waiting for the queue's poll."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from support.quay_db import QuayDatabase
from support.redis_server import RedisServer
from support.server import running_server
from test_quay_mode import quay_config

from slipway.manager import scheduler
from slipway.quay import store as quay_store
from slipway.quay.queue_watch import QueueWatch
from slipway.store.database import Database


async def test_a_new_queue_item_wakes_the_scheduler_once(quay: QuayDatabase) -> None:
    woken: list[float] = []
    db = Database(quay.uri)
    watch = QueueWatch(db, lambda: woken.append(time.time()), interval=0.05)
    try:
        assert await watch.look() is False  # the first look only learns where the queue is
        quay.repository("acme", "watched")
        await asyncio.to_thread(quay.start_build, "acme", "watched")
        assert await watch.look() is True
        assert await watch.look() is False  # nothing new since
        assert len(woken) == 1
    finally:
        await db.close()


async def test_a_build_queued_in_quay_starts_without_the_queues_poll(
    tmp_path: Path, quay: QuayDatabase, redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the poll of the queue and the scheduler's backstop too far off to start it
    monkeypatch.setattr(quay_store, "POLL_INTERVAL_S", 3600.0)
    monkeypatch.setattr(scheduler, "BACKSTOP_SECONDS", 3600.0)
    started = tmp_path / "started"
    worker = tmp_path / "worker.py"
    worker.write_text(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
                      "time.sleep(60)\n")
    config = quay_config(quay, redis_server.port, tmp_path, BUILD_MANAGER=["ephemeral", {
        "EXECUTORS": [{"EXECUTOR": "local",
                       "BUILDER_BINARY_LOCATION": f"{sys.executable} {worker}"}]}])
    quay.repository("acme", "prompt")
    async with running_server(tmp_path, **config):
        await asyncio.sleep(0.5)  # past the scheduler's first pass at start
        await asyncio.to_thread(quay.start_build, "acme", "prompt",
                                archive_url="http://127.0.0.1:1/c.tar.gz")
        deadline = time.monotonic() + 60  # a safety limit, far below the poll's hour
        while not started.exists():
            assert time.monotonic() < deadline, "the build did not reach the executor"
            await asyncio.sleep(0.05)
