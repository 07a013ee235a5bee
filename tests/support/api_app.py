"""An API app over a real SQLite store and the in-memory orchestrator, for API/CLI tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from slipway.api import create_app, create_token
from slipway.backends.data_lifecycle import log_archive_from_config
from slipway.build_secrets import load_or_create_key
from slipway.config.models import AppConfig
from slipway.domain.phases import Phase
from slipway.manager.control import BuildControl
from slipway.manager.phase_log import phase_entry
from slipway.orchestrator.memory import MemoryOrchestrator
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry
from slipway.tokens.jwt import TokenService
from slipway.tokens.keys import load_or_create


@dataclass
class ApiEnv:
    app: FastAPI
    config: AppConfig
    store: SqlStore
    control: BuildControl
    tokens: TokenService
    orchestrator: MemoryOrchestrator
    ready: dict[str, bool]

    async def token(self, scopes: dict[str, str], name: str = "tester",
                    expires: float | None = None) -> str:
        return await create_token(self.store, name, scopes, expires=expires)

    async def advance(self, build_id: str, phase: Phase, *lines: str, **values: Any) -> None:
        """Play the manager: move the build to `phase`, logging it and `lines`."""
        async with self.store.db.write() as conn:
            await self.store.builds.update(conn, build_id, phase=phase, **values)
            entries = [phase_entry(phase)] + [LogEntry(line) for line in lines]
            await self.store.logs.append(build_id, entries, conn)


def make_config(tmp_path: Path, **overrides: Any) -> AppConfig:
    raw: dict[str, Any] = {
        "SERVER_HOSTNAME": "registry.example.com:5000",
        "ALLOWED_REGISTRIES": ["other.example.com"],
        "DATA_DIR": str(tmp_path / "data"),
        "PUBLIC_URL": "http://127.0.0.1:8700",
    }
    raw.update(overrides)
    return AppConfig.model_validate(raw)


@asynccontextmanager
async def api_env(tmp_path: Path, **overrides: Any) -> AsyncIterator[ApiEnv]:
    config = make_config(tmp_path, **overrides)
    # with the configured log archive, as the SQL backend builds it: archived logs are read
    store = await SqlStore(config.DB_URI, log_archive_from_config(config)).open()
    store.secrets.unlock(load_or_create_key(config.BUILD_SECRETS_KEY, Path(config.DATA_DIR)))
    orchestrator = MemoryOrchestrator()
    await orchestrator.start()
    control = BuildControl(store, orchestrator, local_wakeup=lambda: None)
    key = load_or_create(Path(config.DATA_DIR))
    await store.keys.publish(key.kid, key.public_pem)
    tokens = TokenService(key, config.BUILDMAN_HOSTNAME, store.keys.get)
    ready = {"database": True, "orchestrator": True}

    async def readiness() -> dict[str, bool]:
        return dict(ready)

    app = create_app(
        config=config, store=store, control=control, tokens=tokens, readiness=readiness
    )
    try:
        yield ApiEnv(app, config, store, control, tokens, orchestrator, ready)
    finally:
        await orchestrator.close()
        await store.close()


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


class LiveApi:
    """The API served by uvicorn on a free 127.0.0.1 port, in its own thread and event
    loop (the store lives in that loop); `run(coro)` executes a coroutine there."""

    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp_path = tmp_path
        self._overrides = {"PUBLIC_URL": self.url, **overrides}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.env: ApiEnv | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: Any = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        import uvicorn

        async with api_env(self._tmp_path, **self._overrides) as env:
            self.env = env
            self.loop = asyncio.get_running_loop()
            config = uvicorn.Config(
                env.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            while not self._server.started:
                if serving.done():
                    await serving
                await asyncio.sleep(0.01)
            self._started.set()
            await serving

    def start(self) -> LiveApi:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        assert self.env is not None, "the API did not start"
        return self

    def run(self, coro: Any, timeout: float = 30) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def token(self, scopes: dict[str, str], name: str = "tester") -> str:
        """A new API token of `scopes`, made in the API's own loop."""
        assert self.env is not None, "the API is not started"
        return str(self.run(self.env.token(scopes, name)))

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)
