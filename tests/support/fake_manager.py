"""A small in-test build manager: a grpc.aio BuildManagerServicer that hands out one
BuildPack and records what the worker sends (for worker tests, not a real manager)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import (
    BuildManagerServicer,
    add_BuildManagerServicer_to_server,
)


@dataclass
class Recorded:
    registrations: list[str] = field(default_factory=list)
    heartbeats: int = 0
    phases: list[pb.SetPhaseRequest] = field(default_factory=list)
    logs: list[pb.LogMessageRequest] = field(default_factory=list)
    # each accepted SetPhase's metadata (key -> value)
    phase_metadata: list[dict[str, str | bytes]] = field(default_factory=list)

    def phase_names(self) -> list[str]:
        return [pb.Phase.Name(p.phase) for p in self.phases]

    def log_entries(self) -> list[dict[str, str]]:
        return [json.loads(m.log_message) for m in self.logs]

    def stream_lines(self) -> list[str]:
        """Output lines, in order (one message may carry several)."""
        return [
            line
            for e in self.log_entries()
            if "stream" in e
            for line in e["stream"].removesuffix("\n").split("\n")
        ]


class FakeManager(BuildManagerServicer):  # type: ignore[misc]
    def __init__(self, pack: pb.BuildPack, token: str = "registration-token") -> None:
        self.pack = pack
        self.token = token
        self.rec = Recorded()
        self.keep_going = True  # heartbeat reply
        self.on_log: Callable[[dict[str, str]], None] | None = None
        self._last_phase_seq = 0
        self._last_log_seq = 0
        self.finished = asyncio.Event()
        # sent with the registration's answer when set, as slipway's manager does
        self.traceparent: str | None = None

    async def Ping(
        self, request: pb.PingRequest, context: grpc.aio.ServicerContext
    ) -> pb.PingReply:
        return pb.PingReply(reply="pong")

    async def RegisterBuildJob(
        self, request: pb.BuildJobArgs, context: grpc.aio.ServicerContext
    ) -> pb.BuildPack:
        self.rec.registrations.append(request.register_jwt)
        if request.register_jwt != self.token:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid registration token")
        if self.traceparent is not None:
            await context.send_initial_metadata((("traceparent", self.traceparent),))
        return self.pack

    async def Heartbeat(
        self,
        request_iterator: AsyncIterator[pb.HeartbeatRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.HeartbeatResponse]:
        async for request in request_iterator:
            assert request.job_jwt == self.pack.job_jwt
            self.rec.heartbeats += 1
            yield pb.HeartbeatResponse(reply=self.keep_going)

    async def SetPhase(
        self, request: pb.SetPhaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPhaseResponse:
        ok = request.job_jwt == self.pack.job_jwt and request.sequence_number > self._last_phase_seq
        if ok:
            self._last_phase_seq = request.sequence_number
            self.rec.phases.append(request)
            self.rec.phase_metadata.append(dict(context.invocation_metadata() or ()))
            if request.phase in (pb.COMPLETE, pb.ERROR):
                self.finished.set()
        return pb.SetPhaseResponse(success=ok, sequence_number=request.sequence_number)

    async def LogMessage(
        self,
        request_iterator: AsyncIterator[pb.LogMessageRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.LogMessageResponse]:
        async for request in request_iterator:
            try:
                entry = json.loads(request.log_message)
                ok = isinstance(entry, dict) and request.sequence_number > self._last_log_seq
            except ValueError:
                ok = False
            if ok:
                self._last_log_seq = request.sequence_number
                self.rec.logs.append(request)
                if self.on_log is not None:
                    self.on_log(entry)
            yield pb.LogMessageResponse(success=ok, sequence_number=request.sequence_number)


@contextlib.asynccontextmanager
async def serve_manager(
    manager: FakeManager, port: int = 0, tls: grpc.ServerCredentials | None = None
) -> AsyncIterator[str]:
    """Serve `manager` on 127.0.0.1 (plaintext unless `tls`); yields "127.0.0.1:PORT"."""
    server = grpc.aio.server()
    add_BuildManagerServicer_to_server(manager, server)
    if tls is not None:
        bound = server.add_secure_port(f"127.0.0.1:{port}", tls)
    else:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield f"127.0.0.1:{bound}"
    finally:
        await server.stop(grace=None)
