"""A whole slipway process (store, orchestrator, manager, gRPC, HTTP API) inside a test."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from slipway.config.loader import parse_config
from slipway.server import SlipwayServer
from support.archives import tar_gz
from support.registry import free_port


@dataclass
class BuildApi:
    """The build routes of a running slipway, in this process or another."""

    api: httpx.AsyncClient
    base_url: str

    async def upload_context(self, files: dict[str, str | bytes]) -> str:
        """Pack `files` as tar.gz, upload them through the file drop, return the file id."""
        drop = await self.api.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"})
        drop.raise_for_status()
        put = await self.api.put(drop.json()["url"], content=tar_gz(files))
        put.raise_for_status()
        return str(drop.json()["file_id"])

    async def start_build(self, namespace: str, repository: str, **body: Any) -> dict[str, Any]:
        response = await self.api.post(
            f"/api/v1/repository/{namespace}/{repository}/build/", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def wait_final(self, namespace: str, repository: str, build_id: str,
                         within: float = 300) -> dict[str, Any]:
        """Poll the API until the build is final (a safety limit, not a timing test)."""
        deadline = time.monotonic() + within
        while True:
            response = await self.api.get(
                f"/api/v1/repository/{namespace}/{repository}/build/{build_id}/status")
            build = dict(response.json())
            if build["phase"] in ("complete", "error", "internalerror", "cancelled", "expired"):
                return build
            if time.monotonic() > deadline:
                raise AssertionError(f"build still {build['phase']}")
            await asyncio.sleep(0.2)

    async def logs(self, namespace: str, repository: str, build_id: str) -> list[dict[str, Any]]:
        response = await self.api.get(
            f"/api/v1/repository/{namespace}/{repository}/build/{build_id}/logs")
        return list(response.json()["logs"])


@dataclass
class RunningServer(BuildApi):
    server: SlipwayServer

    async def workers_gone(self, within: float = 120.0) -> None:
        """Wait until no worker of the server runs: a local worker pushes its build's
        steps to the registry cache after the build's end (docs/layer-cache.md)."""
        manager = self.server.manager
        assert manager is not None
        deadline = time.monotonic() + within
        while sum([await e.running_count() for e in manager.ctx.executors]):
            assert time.monotonic() < deadline, f"workers still running after {within} s"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    api_port, grpc_port = free_port(), free_port()
    raw: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
        "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{grpc_port}",
        **overrides,
    }
    config = parse_config(raw).config
    server = SlipwayServer(config)
    await server.start()
    base_url = f"http://127.0.0.1:{server.api_port}"
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api:
            yield RunningServer(api=api, base_url=base_url, server=server)
    finally:
        await server.stop()
