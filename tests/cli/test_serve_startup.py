"""What `slipway serve` says when it starts, or cannot: an address in use is one line
naming the setting to change (exit 1, nothing left bound); with builds off it says so; no
library chatter on a normal start."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.ports import bindable, free_port
from support.serve_process import ServeProcess

from slipway.config.loader import parse_config
from slipway.server import SlipwayServer, StartupError


@contextmanager
def listening(port: int, *, reuse_port: bool = False) -> Iterator[socket.socket]:
    """Another program on the port (reuse_port: one that shares ports, as grpc does)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize("key", ["API_LISTEN_ADDRESS", "GRPC_LISTEN_ADDRESS"])
async def test_an_address_in_use_is_one_line_naming_the_setting(tmp_path: Path, key: str) -> None:
    serve = ServeProcess(tmp_path, {})
    address = serve.config[key]
    with listening(int(address.rsplit(":", 1)[1]), reuse_port=True):
        serve.start()
        code = await serve.exit_code()
    lines = serve.output().strip().splitlines()
    assert code == 1
    assert lines == [f"error: slipway could not start: {address} is already in use ({key}): "
                     f"stop what listens there, or set {key} to a free address"]


async def test_a_server_that_could_not_start_leaves_nothing_bound(tmp_path: Path) -> None:
    api_port, grpc_port = free_port(), free_port()
    config = parse_config({"DATA_DIR": str(tmp_path / "data"),
                           "API_LISTEN_ADDRESS": f"127.0.0.1:{api_port}",
                           "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{grpc_port}"}).config
    server = SlipwayServer(config)
    with listening(grpc_port, reuse_port=True):
        with pytest.raises(StartupError, match="GRPC_LISTEN_ADDRESS"):
            await server.start()
        await server.stop()
    assert bindable(api_port) and bindable(grpc_port)


async def test_with_builds_off_it_says_so_and_runs_no_grpc_service(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, {"FEATURE_BUILD_SUPPORT": False})
    grpc_port = int(serve.config["GRPC_LISTEN_ADDRESS"].rsplit(":", 1)[1])
    serve.start()
    try:
        await serve.wait_output("slipway is running")
        assert bindable(grpc_port)
        serve.send(signal.SIGTERM)
        assert await serve.exit_code() == 0
    finally:
        serve.kill()
    output = serve.output()
    assert ("builds are off (FEATURE_BUILD_SUPPORT: false), so no build manager or gRPC "
            "service runs") in output
    assert "None" not in output


async def test_a_normal_start_prints_no_library_chatter(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, {})
    serve.start()
    try:
        await serve.wait_output("slipway is running")
        serve.send(signal.SIGTERM)
        assert await serve.exit_code() == 0
    finally:
        serve.kill()
    output = serve.output()
    assert "alembic.runtime.plugins" not in output
    assert "Context impl" not in output and "Will assume" not in output
    assert "Running upgrade" in output  # a first start creates the schema, and says so
    assert "gRPC for build workers on port" in output
