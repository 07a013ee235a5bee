"""A burst of worker calls (a fleet registering at once, or reconnecting to a restarted
manager) is answered, each call by the manager itself: grpc's default would cancel those
waiting beyond 1,000 before any handler saw them."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import grpc
from support.manager_harness import Harness, ScriptedExecutor

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc

BURST = 4_000


async def test_a_burst_of_registrations_is_answered_not_cancelled(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    await harness.start([ScriptedExecutor(harness.executor_configs()[0], "m")])
    channels = [grpc.aio.insecure_channel(harness.address) for _ in range(4)]
    stubs = [pb_grpc.BuildManagerStub(c) for c in channels]
    try:
        async def register(i: int) -> str:
            try:
                await stubs[i % len(stubs)].RegisterBuildJob(
                    pb.BuildJobArgs(register_jwt=f"not-a-token-{i}"), timeout=120)
            except grpc.aio.AioRpcError as exc:
                return f"{exc.code().name}: {exc.details()}"
            return "OK"

        answers = Counter(await asyncio.gather(*(register(i) for i in range(BURST))))
    finally:
        for channel in channels:
            await channel.close()
        await harness.stop()
    # every call reached the manager, which refused the bad token
    assert answers == {"UNAUTHENTICATED: token is not a JWT": BURST}
