"""MemoryOrchestrator specifics: many expiring keys with frequent touches."""

from __future__ import annotations

import asyncio

import pytest

from slipway.orchestrator.base import KeyEvent, KeyEventKind, OrchestratorError
from slipway.orchestrator.memory import MemoryOrchestrator


async def test_ten_thousand_keys_touched_often_expire_exactly_once() -> None:
    o = MemoryOrchestrator("p:")
    await o.start()
    expired: dict[str, str | None] = {}
    all_gone = asyncio.Event()
    n = 10_000

    async def on_expire(event: KeyEvent) -> None:
        if event.kind is KeyEventKind.EXPIRE:
            assert event.key not in expired, "expired twice"
            expired[event.key] = event.value
            if len(expired) == n // 2:
                all_gone.set()

    o.subscribe("job/", on_expire)
    for i in range(n):
        await o.set(f"job/{i}", f"v{i}", expiration=60)
    # Heartbeats: every key is touched many times (exercising heap compaction), then
    # the odd ones get a short deadline, as if their heartbeats stopped.
    for _ in range(5):
        for i in range(n):
            assert await o.touch(f"job/{i}", 60)
    for i in range(1, n, 2):
        assert await o.touch(f"job/{i}", 0.05)
    await asyncio.wait_for(all_gone.wait(), 30)  # a guard, not a timing target
    assert set(expired) == {f"job/{i}" for i in range(1, n, 2)}
    assert all(expired[f"job/{i}"] == f"v{i}" for i in range(1, n, 2))
    assert len(await o.get_prefixed("job/")) == n // 2
    await o.close()


async def test_closed_orchestrator_refuses_writes() -> None:
    o = MemoryOrchestrator()
    await o.start()
    await o.close()
    assert await o.healthy() is False
    with pytest.raises(OrchestratorError, match="closed"):
        await o.set("a", "1")
