"""TRACING.OTLP_ENDPOINT: a real build's trace, the worker's spans with it, reaches a
real OTLP receiver (opentelemetry-proto's gRPC TraceService), with the configured
headers, and is still kept with the build."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.otlp_receiver import otlp_receiver
from support.registry import Registry
from support.server import running_server

pytestmark = pytest.mark.podman


async def test_a_build_trace_is_exported_over_otlp(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    async with otlp_receiver() as receiver, running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
        TRACING={"OTLP_ENDPOINT": receiver.endpoint,
                 "OTLP_HEADERS": {"x-collector-token": "collector-secret"}},
    ) as slipway:
        file_id = await slipway.upload_context({
            "Dockerfile": f"FROM {base_image}\nRUN echo exported\n"})
        build = await slipway.start_build("demo", "exported", file_id=file_id)
        final = await slipway.wait_final("demo", "exported", build["id"])
        assert final["phase"] == "complete"
        kept = (await slipway.api.get(
            f"/api/v1/repository/demo/exported/build/{build['id']}/trace")).json()
        # the exporter sends in batches: wait for the root, which comes last
        deadline = time.monotonic() + 30
        while not any(s.name == "build" for s in receiver.spans):
            assert time.monotonic() < deadline, [s.name for s in receiver.spans]
            await asyncio.sleep(0.1)
    exported = [s for s in receiver.spans if s.trace_id == kept["trace_id"]]
    assert {s.span_id for s in exported} == {s["span_id"] for s in kept["spans"]}
    services = {s.name: s.service for s in exported}
    assert services["build"] == services["executor start"] == "slipway-manager"
    assert services["worker"] == services["step 2/2"] == "slipway-worker"
    # the build id the manager tags its spans with goes out too (to find the build)
    assert {s.attributes.get("slipway.build_id") for s in exported} == {build["id"]}
    assert all(h.get("x-collector-token") == "collector-secret" for h in receiver.headers)
