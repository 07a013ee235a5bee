"""The protocol's own ceiling: a gRPC server, in its own process like slipway's, whose
LogMessage only acknowledges each line (no token check, no parsing, no database). The
logs benchmark streams the same lines to it, so slipway's figure reads against what
grpcio itself allows on this machine.

python -m benchmarks.grpc_ceiling   # prints {"pid", "grpc_port"}; stops when stdin closes
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc


class AckOnly(pb_grpc.BuildManagerServicer):
    async def LogMessage(
        self, request_iterator: AsyncIterator[pb.LogMessageRequest], context: Any
    ) -> AsyncIterator[pb.LogMessageResponse]:
        async for request in request_iterator:
            yield pb.LogMessageResponse(success=True, sequence_number=request.sequence_number)


async def _main() -> None:
    server = grpc.aio.server()
    pb_grpc.add_BuildManagerServicer_to_server(AckOnly(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sys.stdout.write(json.dumps({"pid": os.getpid(), "grpc_port": port}) + "\n")
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(grace=0)


if __name__ == "__main__":
    asyncio.run(_main())
