"""Grouped calls (heartbeats' touches and lease extensions): calls that arrive together
share one send, each caller gets its own answer, and a failed send fails only its calls."""

from __future__ import annotations

import asyncio

import pytest

from slipway.group_calls import GroupedCalls


async def test_calls_arriving_together_share_sends_of_bounded_size() -> None:
    sends: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        sends.append(items)
        await asyncio.sleep(0.01)
        return [2 * i for i in items]

    calls = GroupedCalls(double, batch=4)
    assert await asyncio.gather(*(calls.call(i) for i in range(10))) == [
        2 * i for i in range(10)]
    assert sends == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert await calls.call(21) == 42  # a lone call goes out on its own


async def test_a_failed_send_fails_its_callers_and_the_next_round_goes_on() -> None:
    async def flaky(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ConnectionError("Redis went away")
        return [s.upper() for s in items]

    calls = GroupedCalls(flaky, batch=2)
    results = await asyncio.gather(
        calls.call("bad"), calls.call("x"), calls.call("y"), return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and isinstance(results[1], ConnectionError)
    assert results[2] == "Y"
    assert await calls.call("z") == "Z"


async def test_an_exception_answered_for_one_item_fails_that_call_only() -> None:
    async def checked(items: list[str]) -> list[str | Exception]:
        return [ValueError(f"{s} refused") if s.startswith("bad") else s.upper()
                for s in items]

    calls: GroupedCalls[str, str | Exception] = GroupedCalls(checked, batch=10)
    results = await asyncio.gather(
        calls.call("x"), calls.call("bad-y"), calls.call("z"), return_exceptions=True)
    assert results[0] == "X" and results[2] == "Z"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad-y refused"


async def test_closing_fails_the_calls_not_answered_with_the_reason_given() -> None:
    started = asyncio.Event()

    async def never(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return items

    calls = GroupedCalls(never, batch=10)
    waiting = asyncio.ensure_future(calls.call(1))
    await started.wait()
    late = asyncio.ensure_future(calls.call(2))
    await asyncio.sleep(0)
    await calls.close(RuntimeError("stopping"))
    for call in (waiting, late):
        with pytest.raises(RuntimeError, match="stopping"):
            await call
