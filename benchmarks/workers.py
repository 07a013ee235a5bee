"""Many protocol-speaking workers in one process, multiplexed over a few gRPC channels."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import grpc

from benchmarks.harness import channels, stubs
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc

DIGEST = "sha256:" + "0" * 64


class WorkerFleet:
    """Turns each null-executor call into a worker that registers (and, with `complete`,
    reports `building` then `complete`). Times are time.time() of this process."""

    def __init__(
        self,
        address: str,
        *,
        connections: int = 8,
        complete: bool = False,
        on_registered: Callable[[str, str], None] | None = None,
    ) -> None:
        self.chans = channels(address, connections)
        self._stubs = stubs(self.chans)
        self._next = itertools.cycle(self._stubs)
        self.complete = complete
        self.on_registered = on_registered
        self.executor_called: dict[str, float] = {}
        self.registered: dict[str, float] = {}
        self.job_tokens: dict[str, str] = {}
        self.completed: set[str] = set()
        self.errors: list[str] = []
        self.failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def stub(self) -> pb_grpc.BuildManagerStub:
        return next(self._next)

    def on_event(self, event: dict[str, Any]) -> None:
        self.executor_called[event["b"]] = event["at"]
        task = asyncio.get_running_loop().create_task(self._work(event["b"], event["t"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, build_id: str, token: str) -> None:
        stub = self.stub()
        try:
            pack = await self._register(token)
            self.registered[build_id] = time.time()
            self.job_tokens[build_id] = pack.job_jwt
            if self.on_registered is not None:
                self.on_registered(build_id, pack.job_jwt)
            if not self.complete:
                return
            for seq, phase in ((1, pb.BUILDING), (2, pb.COMPLETE)):
                request = pb.SetPhaseRequest(
                    job_jwt=pack.job_jwt, sequence_number=seq, phase=phase,
                    image_digest=DIGEST if phase == pb.COMPLETE else "",
                )
                if not (await stub.SetPhase(request)).success:
                    raise RuntimeError(f"SetPhase {phase} refused")
            self.completed.add(build_id)
        except (grpc.aio.AioRpcError, RuntimeError) as exc:
            self.failures += 1
            if len(self.errors) < 20:
                self.errors.append(f"{build_id}: {exc}")

    async def _register(self, token: str) -> pb.BuildPack:
        return await self.stub().RegisterBuildJob(pb.BuildJobArgs(register_jwt=token))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for chan in self.chans:
            await chan.close()
