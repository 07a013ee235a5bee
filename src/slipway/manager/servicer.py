"""The gRPC BuildManager service (package buildman_pb), Quay's wire protocol."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc

from slipway.domain.refusals import CallRefused
from slipway.manager import worker_calls
from slipway.manager.build_pack import BuildPack, PackParts
from slipway.manager.call_outages import OUTAGES, outage_of
from slipway.manager.context import ManagerContext
from slipway.manager.worker_calls import LogStreamState
from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc
from slipway.tracing.wire import MAX_SPANS_BYTES, SPANS_KEY, TRACEPARENT_KEY

log = logging.getLogger("slipway.grpc")
T = TypeVar("T")

# how many queued log lines one transaction takes at most
LOG_BATCH = 1000
# a call's metadata, at most: the worker's spans (MAX_SPANS_BYTES) and the rest
METADATA_LIMIT = MAX_SPANS_BYTES + 64 * 1024


async def abort_unavailable(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """End the call UNAVAILABLE with a retry hint (call_outages.py); always raises."""
    outage = outage_of(exc)
    assert outage is not None, exc
    log.debug("a worker call met an outage: %s", outage.message)
    await context.abort(grpc.StatusCode.UNAVAILABLE, outage.message,
                        trailing_metadata=outage.trailing_metadata)


class BuildManagerServicer(pb_grpc.BuildManagerServicer):
    def __init__(self, ctx: ManagerContext, packs: PackParts) -> None:
        self.ctx = ctx
        self.packs = packs

    async def _shielded(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a state change to its end even if the worker hangs up meanwhile: gRPC
        cancels the handler when the client goes away, which must not leave a build half
        ended (job key gone, record not updated)."""
        task = self.ctx.spawn(coro, "a worker call")
        return await asyncio.shield(task)

    async def Ping(
        self, request: pb.PingRequest, context: grpc.aio.ServicerContext
    ) -> pb.PingReply:
        return pb.PingReply(reply="pong")

    async def RegisterBuildJob(
        self, request: pb.BuildJobArgs, context: grpc.aio.ServicerContext
    ) -> pb.BuildPack:
        try:
            pack = await self._shielded(
                worker_calls.register(self.ctx, self.packs, request.register_jwt))
        except CallRefused as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
            raise  # unreachable: abort raises
        except OUTAGES as exc:  # the token was not spent (worker_calls.register)
            await abort_unavailable(context, exc)
            raise
        # the build's trace, for the worker's spans (tracing/wire.py); peers that do not
        # know it ignore it
        await context.send_initial_metadata(
            ((TRACEPARENT_KEY, self.ctx.tracing.traceparent(pack.build_id)),))
        return build_pack_message(pack)

    async def Heartbeat(
        self,
        request_iterator: AsyncIterator[pb.HeartbeatRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.HeartbeatResponse]:
        async for request in request_iterator:
            try:
                alive = await worker_calls.heartbeat(self.ctx, request.job_jwt)
            except OUTAGES as exc:
                await abort_unavailable(context, exc)
                raise
            yield pb.HeartbeatResponse(reply=alive)

    async def SetPhase(
        self, request: pb.SetPhaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPhaseResponse:
        metadata = {}
        if request.HasField("pull_metadata"):
            pm = request.pull_metadata
            metadata = {
                "registry_url": pm.registry_url,
                "base_image": pm.base_image,
                "base_image_tag": pm.base_image_tag,
                "pull_username": pm.pull_username,
            }
        try:
            ok = await self._shielded(
                worker_calls.set_phase(
                    self.ctx,
                    request.job_jwt,
                    request.sequence_number,
                    request.phase,
                    metadata,
                    image_digest=request.image_digest,
                    error_message=request.error_message,
                    attestations=request.attestations,
                    worker_spans=worker_spans(context),
                )
            )
        except CallRefused as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
            raise
        except OUTAGES as exc:
            await abort_unavailable(context, exc)
            raise
        return pb.SetPhaseResponse(success=ok, sequence_number=request.sequence_number)

    async def LogMessage(
        self,
        request_iterator: AsyncIterator[pb.LogMessageRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.LogMessageResponse]:
        # read ahead so lines that arrive together are stored in one transaction
        pending: asyncio.Queue[pb.LogMessageRequest | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await pending.put(request)
            finally:
                await pending.put(None)

        reader = asyncio.get_running_loop().create_task(read())
        state = LogStreamState()
        try:
            done = False
            while not done:
                first = await pending.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < LOG_BATCH and not pending.empty():
                    nxt = pending.get_nowait()
                    if nxt is None:
                        done = True
                        break
                    batch.append(nxt)
                try:
                    results = await self._shielded(
                        worker_calls.ingest_logs(
                            self.ctx,
                            state,
                            [(r.job_jwt, r.sequence_number, r.log_message, r.phase)
                             for r in batch],
                        )
                    )
                except CallRefused as exc:  # the attempt has ended: the worker stops
                    await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
                    raise
                except OUTAGES as exc:  # unacknowledged: the worker sends them again
                    await abort_unavailable(context, exc)
                    raise
                for result in results:
                    yield pb.LogMessageResponse(
                        success=result.success, sequence_number=result.sequence_number
                    )
        finally:
            reader.cancel()

    async def DetermineCachedTag(
        self, request: pb.CachedTagRequest, context: grpc.aio.ServicerContext
    ) -> pb.CachedTag:
        try:
            tag = await worker_calls.cached_tag(self.ctx, request.job_jwt)
        except CallRefused as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), str(exc))
            raise
        except OUTAGES as exc:
            await abort_unavailable(context, exc)
            raise
        return pb.CachedTag(CachedTag=tag)


def worker_spans(context: grpc.aio.ServicerContext) -> bytes:
    """The spans a worker sent in the call's metadata (tracing/wire.py), b"" if none."""
    for key, value in context.invocation_metadata() or ():
        if key == SPANS_KEY and isinstance(value, bytes):
            return value
    return b""


def build_pack_message(pack: BuildPack) -> pb.BuildPack:
    """The BuildPack message of `pack` (manager/build_pack.py)."""
    message = pb.BuildPack(
        job_jwt=pack.job_token,
        package_url=pack.package_url,
        context=pack.context,
        dockerfile_path=pack.dockerfile_path,
        repository=pack.repository,
        registry=pack.registry,
        tag_names=pack.tags,
        target=pack.target,
        push_username=pack.push_username,
        push_password=pack.push_password,
        push_token=pack.push_token,
        pull_token=pack.pull_token,
        no_cache=pack.no_cache,
        pull=pack.pull,
        platforms=pack.platforms,
    )
    if pack.git_package is not None:  # in the oneof, in place of package_url
        message.git_package.url = pack.git_package.url
        message.git_package.sha = pack.git_package.sha
        message.git_package.private_key = pack.git_package.private_key
    if pack.base_image is not None:
        message.base_image.username = pack.base_image.username
        message.base_image.password = pack.base_image.password
    for name, value in pack.build_args.items():
        message.build_args.add(name=name, value=value)
    for name, value in pack.labels.items():
        message.labels.add(name=name, value=value)
    for name, value in pack.secrets.items():
        message.secrets.add(name=name, value=value)
    if pack.signing is not None:
        signing = message.signing
        signing.private_key = pack.signing.private_key
        signing.passphrase = pack.signing.passphrase
        signing.required = pack.signing.required
        signing.sbom = pack.signing.sbom
        signing.build_arg_values = pack.signing.build_arg_values
        signing.builder_id = pack.signing.builder_id
        signing.build_id = pack.signing.build_id
    return message


# worker calls that may wait for the manager's event loop at once (a few KB each)
MAX_PENDING_CALLS = 100_000


def create_grpc_server(
    ctx: ManagerContext,
    listen: str,
    packs: PackParts,
    *,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
) -> tuple[grpc.aio.Server, int]:
    """The server (not started) and the port it bound (useful with port 0); `packs` is
    the backend's part of each registered worker's BuildPack."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            # grpc cancels calls that wait for the application beyond 1,000 (all of them
            # beyond 3,000), before any handler sees them: a fleet of workers registering
            # at once, or reconnecting to a restarted manager, would get CANCELLED
            ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
            ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_CALLS),
            # grpc sets SO_REUSEPORT by default: a port another process listens on would
            # be shared with it, silently, rather than refused
            ("grpc.so_reuseport", 0),
            # a worker's finished spans come in its last SetPhase's metadata
            ("grpc.max_metadata_size", METADATA_LIMIT),
            ("grpc.absolute_max_metadata_size", METADATA_LIMIT),
        ]
    )
    pb_grpc.add_BuildManagerServicer_to_server(BuildManagerServicer(ctx, packs), server)
    if tls_cert and tls_key:
        with open(tls_cert, "rb") as c, open(tls_key, "rb") as k:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(listen, credentials)
    else:
        port = server.add_insecure_port(listen)
    return server, port
