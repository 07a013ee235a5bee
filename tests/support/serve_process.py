"""`slipway serve` as a real process, its output in a file, its API reachable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.registry import free_port
from support.server import BuildApi

START_LIMIT_S = 60.0  # guards against a hang; not a timing assertion


class ServeProcess:
    def __init__(self, tmp_path: Path, config: dict[str, Any], name: str = "serve") -> None:
        self.tmp_path = tmp_path
        self.api_port = free_port()
        self.config = {
            "DATA_DIR": str(tmp_path / "data"),
            "API_LISTEN_ADDRESS": f"127.0.0.1:{self.api_port}",
            "GRPC_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
            **config,
        }
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.output_path = tmp_path / f"{name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.tmp_path / "xdg")}
        with open(self.output_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "slipway.cli.main", "serve", "--config",
                 str(self.config_path)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_output(self, text: str) -> None:
        deadline = time.monotonic() + START_LIMIT_S
        while text not in self.output():
            assert self.proc is not None and self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"{text!r} never printed: {self.output()}"
            await asyncio.sleep(0.05)

    async def exit_code(self, within: float = 120.0) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"slipway serve still running: {self.output()}"
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @contextlib.asynccontextmanager
    async def api(self) -> AsyncIterator[BuildApi]:
        """The API, once ready, with the admin token serve created."""
        base = f"http://127.0.0.1:{self.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + START_LIMIT_S
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                assert self.proc is not None and self.proc.poll() is None, self.output()
                assert time.monotonic() < deadline, f"never ready: {self.output()}"
                await asyncio.sleep(0.2)
            token = (Path(self.config["DATA_DIR"]) / "admin-token").read_text().strip()
            client.headers["Authorization"] = f"Bearer {token}"
            yield BuildApi(client, base)
