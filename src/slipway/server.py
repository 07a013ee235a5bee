"""One slipway process: store, orchestrator, manager, gRPC service and HTTP API together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slipway.config.models import AppConfig, ManagerConfig
from slipway.executors.base import Executor
from slipway.executors.local import LocalExecutor
from slipway.executors.local_config import LocalExecutorConfig
from slipway.executors.registry import create_executor
from slipway.manager.control import BuildControl
from slipway.manager.service import BuildManager, new_manager_id
from slipway.manager.servicer import create_grpc_server
from slipway.orchestrator.base import Orchestrator
from slipway.store.builds import BuildRecord
from slipway.store.facade import Store
from slipway.tokens.jwt import TokenService
from slipway.tokens.keys import load_or_create

log = logging.getLogger("slipway.server")
# seconds an idle API connection is kept open (see SlipwayServer.start)
API_KEEP_ALIVE_S = 65


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_executors(
    app_config: AppConfig, manager_config: ManagerConfig, manager_id: str
) -> list[Executor[Any]]:
    executors: list[Executor[Any]] = []
    for entry in manager_config.EXECUTORS:
        if isinstance(entry, LocalExecutorConfig):  # its workers' output goes to DATA_DIR
            log_dir = Path(app_config.DATA_DIR) / "workers"
            executors.append(LocalExecutor(entry, manager_id, log_dir=log_dir))
        else:
            executors.append(create_executor(entry, manager_id))
    return executors


ExecutorFactory = Callable[[AppConfig, ManagerConfig, str], list[Executor[Any]]]


class SlipwayServer:
    """Start with `await start()`, stop with `await stop()`. Ports may be 0 (tests): the
    bound ports are then in `grpc_port` and `api_port`. `executor_factory(app_config,
    manager_config, manager_id)` replaces `build_executors` (tests and benchmarks run
    the configured executors as in-process, protocol-speaking stand-ins)."""

    def __init__(
        self,
        config: AppConfig,
        *,
        with_api: bool = True,
        executor_factory: ExecutorFactory | None = None,
    ) -> None:
        self.config = config
        self.with_api = with_api
        self.executor_factory = executor_factory or build_executors
        self.store = Store(config.DB_URI)
        self.orchestrator: Orchestrator | None = None
        self.manager: BuildManager | None = None
        self.control: BuildControl | None = None
        self.tokens: TokenService | None = None
        self.grpc_server: Any = None
        self.grpc_port: int | None = None
        self.api_port: int | None = None
        self.admin_token: str | None = None
        self._uvicorn: Any = None
        self._api_task: asyncio.Task[None] | None = None

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": await self.store.db.ping()}
        if self.orchestrator is not None:
            checks["orchestrator"] = await self.orchestrator.healthy()
        return checks

    def _context_url(self, record: BuildRecord) -> str:
        from slipway.api.filedrop import context_url

        assert self.tokens is not None
        return context_url(self.config, self.tokens, record)

    async def start(self) -> None:
        from slipway.manager.keys import UNPUBLISHED_EVENTS
        from slipway.orchestrator.factory import create_orchestrator

        config = self.config
        key = await asyncio.to_thread(load_or_create, Path(config.DATA_DIR))
        await self.store.open()
        await self.store.keys.publish(key.kid, key.public_pem)
        self.tokens = TokenService(key, config.BUILDMAN_HOSTNAME, self.store.keys.get)
        manager_config = config.manager
        self.orchestrator = create_orchestrator(manager_config, UNPUBLISHED_EVENTS)
        await self.orchestrator.start()
        self.control = BuildControl(self.store, self.orchestrator)
        if manager_config is not None and config.FEATURE_BUILD_SUPPORT:
            manager_id = new_manager_id()
            self.manager = BuildManager(
                app_config=config,
                manager_config=manager_config,
                store=self.store,
                orchestrator=self.orchestrator,
                executors=self.executor_factory(config, manager_config, manager_id),
                tokens=self.tokens,
                context_url=self._context_url,
                manager_id=manager_id,
            )
            self.control.attach_scheduler(self.manager.scheduler.wake)
            self.grpc_server, self.grpc_port = create_grpc_server(
                self.manager.ctx,
                config.GRPC_LISTEN_ADDRESS,
                tls_cert=config.BUILDMAN_TLS_CERT,
                tls_key=config.BUILDMAN_TLS_KEY,
            )
            await self.grpc_server.start()
            await self.manager.start()
            log.info("gRPC BuildManager listening on port %s", self.grpc_port)
        if self.with_api:
            await self._start_api()

    async def _start_api(self) -> None:
        import uvicorn

        from slipway.api.app import create_app
        from slipway.api.auth import bootstrap_admin_token

        assert self.control is not None and self.tokens is not None
        self.admin_token = await bootstrap_admin_token(self.store, self.config)
        app = create_app(
            config=self.config,
            store=self.store,
            control=self.control,
            tokens=self.tokens,
            readiness=self.readiness,
        )
        host, port = _host_port(self.config.API_LISTEN_ADDRESS)
        # Idle keep-alive connections are closed by the client first: clients commonly
        # keep them 5 s (httpx), uvicorn's default too, and a request sent on a connection
        # the server closes at that moment fails with no answer. 65 s is the usual load
        # balancers' idle timeout, plus a margin.
        uv_config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                   lifespan="off", timeout_keep_alive=API_KEEP_ALIVE_S)
        self._uvicorn = uvicorn.Server(uv_config)
        self._uvicorn.install_signal_handlers = lambda: None
        self._api_task = asyncio.get_running_loop().create_task(self._uvicorn.serve())
        while not self._uvicorn.started:
            if self._api_task.done():
                self._api_task.result()  # raises the bind error
            await asyncio.sleep(0.02)
        sockets = self._uvicorn.servers[0].sockets
        self.api_port = sockets[0].getsockname()[1]
        log.info("HTTP API listening on %s:%s", host, self.api_port)

    async def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            if self._api_task is not None:
                await self._api_task
        if self.manager is not None:
            await self.manager.shutdown()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=1)
        if self.orchestrator is not None:
            await self.orchestrator.close()
        await self.store.close()
