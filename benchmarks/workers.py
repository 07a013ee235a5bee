"""Many protocol-speaking workers in one process, multiplexed over a few gRPC channels.

Each call is made as a worker makes it: with the worker's deadline, and tried again on
the codes a worker retries (slipway.worker.retry), within RETRY_WINDOW. Calls tried more
than once are counted in `retried_calls`: under overload a manager's queue of pending
calls outgrows the deadline, and grpc cancels calls pending for 30 s."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from benchmarks.harness import channels, stubs
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc
from slipway.worker.errors import ManagerUnreachable
from slipway.worker.retry import CALL_TIMEOUT, REGISTER_TIMEOUT, call_with_retry

DIGEST = "sha256:" + "0" * 64
RETRY_WINDOW = 120.0  # seconds a call is tried for: twice a worker's default
T = TypeVar("T")
# every retry is logged as a warning by the worker's code: thousands under overload
logging.getLogger("slipway.worker").setLevel(logging.ERROR)


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
        self.retried_calls = 0
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
                reply, tries = await self._call(
                    f"SetPhase({phase})",
                    functools.partial(stub.SetPhase, request, timeout=CALL_TIMEOUT))
                if not reply.success and tries == 1:  # (a refused retry: the first landed)
                    raise RuntimeError(f"SetPhase {phase} refused")
            self.completed.add(build_id)
        except (ManagerUnreachable, RuntimeError) as exc:
            self.failures += 1
            if len(self.errors) < 20:
                self.errors.append(f"{build_id}: {exc}")

    async def _register(self, token: str) -> pb.BuildPack:
        request = pb.BuildJobArgs(register_jwt=token)
        pack, _ = await self._call(
            "RegisterBuildJob",
            lambda: self.stub().RegisterBuildJob(request, timeout=REGISTER_TIMEOUT))
        return pack

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """(reply, tries), retried as a worker retries."""
        tries = 0

        async def counted() -> T:
            nonlocal tries
            tries += 1
            if tries == 2:
                self.retried_calls += 1
            return await call()

        return await call_with_retry(what, RETRY_WINDOW, counted), tries

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for chan in self.chans:
            await chan.close()
