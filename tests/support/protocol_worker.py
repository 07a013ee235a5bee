"""A scripted worker that speaks the real gRPC protocol, for manager tests."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence

import grpc

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc

# Every worker whose channel is still open. A grpc.aio channel that is garbage-collected
# without close() (e.g. its task was cancelled when the executor stopped the "worker") can
# crash the interpreter, so open channels stay referenced until `close_all()`.
_OPEN: set[ProtocolWorker] = set()


# channels whose close() hung, with that close: kept referenced, never garbage-collected
_STUCK: list[tuple[ProtocolWorker, asyncio.Task[None]]] = []
CLOSE_LIMIT = 5.0
# a safety limit on every call, so a call that never returns fails where it was made
CALL_LIMIT = 60.0


async def close_all() -> None:
    for worker in list(_OPEN):
        # not wait_for: it would wait for a hung close to acknowledge its cancellation
        closing = asyncio.get_running_loop().create_task(worker.close())
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_LIMIT)
        if not done:
            _STUCK.append((worker, closing))
            print(f"a test worker's grpc.aio channel did not close in {CLOSE_LIMIT} s",
                  file=sys.stderr)


class ProtocolWorker:
    def __init__(self, address: str) -> None:
        _OPEN.add(self)
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = pb_grpc.BuildManagerStub(self.channel)
        self.job_jwt = ""
        self.seq = 0
        self.heartbeat_replies: list[bool] = []

    async def close(self) -> None:
        _OPEN.discard(self)
        await self.channel.close()

    async def register(self, token: str) -> pb.BuildPack:
        pack = await self.stub.RegisterBuildJob(pb.BuildJobArgs(register_jwt=token),
                                                 timeout=CALL_LIMIT)
        self.job_jwt = pack.job_jwt
        return pack

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def heartbeat(self, count: int = 1, job_jwt: str | None = None) -> list[bool]:
        token = job_jwt if job_jwt is not None else self.job_jwt

        async def requests() -> AsyncIterator[pb.HeartbeatRequest]:
            for _ in range(count):
                yield pb.HeartbeatRequest(job_jwt=token)

        replies = [r.reply async for r in self.stub.Heartbeat(requests(), timeout=CALL_LIMIT)]
        self.heartbeat_replies.extend(replies)
        return replies

    async def heartbeat_until_refused(self, interval: float = 0.2) -> None:
        """Heartbeat like a real worker until the manager answers false."""
        while True:
            (reply,) = await self.heartbeat()
            if not reply:
                return
            await asyncio.sleep(interval)

    async def set_phase(
        self,
        phase: int,
        *,
        seq: int | None = None,
        digest: str = "",
        error: str = "",
        job_jwt: str | None = None,
        pull_metadata: dict[str, str] | None = None,
    ) -> pb.SetPhaseResponse:
        request = pb.SetPhaseRequest(
            job_jwt=job_jwt if job_jwt is not None else self.job_jwt,
            sequence_number=seq if seq is not None else self.next_seq(),
            phase=phase,  # type: ignore[arg-type]
            image_digest=digest,
            error_message=error,
        )
        if pull_metadata:
            request.pull_metadata.CopyFrom(pb.SetPhaseRequest.PullMetadata(**pull_metadata))
        return await self.stub.SetPhase(request, timeout=CALL_LIMIT)

    async def logs(
        self,
        lines: Sequence[dict[str, object] | str],
        *,
        seqs: Sequence[int] | None = None,
        job_jwt: str | None = None,
    ) -> list[pb.LogMessageResponse]:
        token = job_jwt if job_jwt is not None else self.job_jwt
        numbers = list(seqs) if seqs is not None else [self.next_seq() for _ in lines]

        async def requests() -> AsyncIterator[pb.LogMessageRequest]:
            for number, line in zip(numbers, lines, strict=True):
                text = line if isinstance(line, str) else json.dumps(line)
                yield pb.LogMessageRequest(
                    job_jwt=token, sequence_number=number, log_message=text, phase="building"
                )

        return [r async for r in self.stub.LogMessage(requests(), timeout=CALL_LIMIT)]
