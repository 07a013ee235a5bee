"""An idle HTTP connection stays open past the 5 s most clients keep one (httpx, and
uvicorn's own default): a request a client sends on it just as the server closed it
would get no answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.server import running_server

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: slipway\r\n\r\n"


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One request on the open connection; the status line of its answer."""
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


async def test_an_idle_connection_is_still_served_after_six_seconds(tmp_path: Path) -> None:
    async with running_server(tmp_path) as slipway:
        reader, writer = await asyncio.open_connection("127.0.0.1", slipway.server.api_port)
        try:
            assert (await _get(reader, writer)).startswith(b"HTTP/1.1 ")
            await asyncio.sleep(6)  # past uvicorn's default keep-alive of 5 s
            assert (await _get(reader, writer)).startswith(b"HTTP/1.1 ")
        finally:
            writer.close()
