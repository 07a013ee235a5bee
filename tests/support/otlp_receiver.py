"""A real OTLP trace receiver: the gRPC TraceService of opentelemetry-proto (the classes
the SDK's exporter speaks to), on a free port, keeping what it is sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb_grpc


@dataclass
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict[str, Any]


@dataclass
class OtlpReceiver(pb_grpc.TraceServiceServicer):
    endpoint: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def Export(self, request: pb.ExportTraceServiceRequest,
                     context: grpc.aio.ServicerContext) -> pb.ExportTraceServiceResponse:
        self.headers.append({k: v for k, v in context.invocation_metadata() or ()
                             if isinstance(v, str)})
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value
                        for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    self.spans.append(ReceivedSpan(
                        service=resource.get("service.name", ""),
                        trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(), name=s.name,
                        attributes={a.key: getattr(a.value, a.value.WhichOneof("value") or
                                                   "string_value") for a in s.attributes},
                    ))
        return pb.ExportTraceServiceResponse()


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    server = grpc.aio.server()
    pb_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await server.stop(grace=None)
