"""One slipway process: store, orchestrator, manager, gRPC service and HTTP API together."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slipway.backends.base import Backend, BackendError, BackgroundService
from slipway.backends.choose import choose_backend
from slipway.build_secrets import load_or_create_key
from slipway.config.models import AppConfig, ManagerConfig
from slipway.executors.base import Executor
from slipway.executors.local.config import LocalExecutorConfig
from slipway.executors.local.executor import LocalExecutor
from slipway.executors.registry import create_executor
from slipway.manager.control import BuildControl
from slipway.manager.service import BuildManager, new_manager_id
from slipway.manager.servicer import create_grpc_server
from slipway.orchestrator.base import Orchestrator, OrchestratorError
from slipway.startup_errors import orchestrator_problem
from slipway.store.interfaces import Store
from slipway.store.records import BuildRecord
from slipway.tokens.jwt import TokenService
from slipway.tokens.keys import load_or_create
from slipway.tracing.build_tracing import BuildTracing
from slipway.tracing.setup import tracing_from_config

log = logging.getLogger("slipway.server")
# seconds an idle API connection is kept open (see SlipwayServer.start)
API_KEEP_ALIVE_S = 65


# how long requests still being answered may take at shutdown (live log streams end at
# once) before they are cut
API_SHUTDOWN_GRACE_S = 3


class StartupError(Exception):
    """slipway cannot start; the message says why and which setting to change."""


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _in_use(address: str, key: str) -> StartupError:
    return StartupError(f"{address} is already in use ({key}): stop what listens there, or "
                        f"set {key} to a free address")


def bind_listener(address: str, key: str) -> socket.socket:
    """A listening TCP socket on `address` (host:port), or StartupError naming `key`."""
    host, port = _host_port(address)
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise StartupError(f"{key}: cannot resolve {host!r} ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        # restarting at once must not wait for the last run's connections in TIME_WAIT;
        # a socket that listens there still makes bind() fail (no SO_REUSEPORT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise _in_use(address, key) from None
        raise StartupError(f"{key}: cannot listen on {address} ({exc.strerror})") from None
    sock.setblocking(False)
    return sock


def _embedded_uvicorn(config: Any) -> Any:
    """uvicorn.Server without its own signal handling: `slipway serve` handles SIGTERM
    and SIGINT (uvicorn's would take them over, and wait for open log streams)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # uvicorn >= 0.29
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

    return Server(config)


def build_executors(
    app_config: AppConfig, manager_config: ManagerConfig, manager_id: str
) -> list[Executor[Any]]:
    executors: list[Executor[Any]] = []
    for entry in manager_config.EXECUTORS:
        if isinstance(entry, LocalExecutorConfig):  # its workers' output goes to DATA_DIR
            log_dir = Path(app_config.DATA_DIR) / "workers"
            signing = app_config.SIGNING
            warm = [] if signing is None else ["signing"] + (
                ["sbom"] if signing.SBOM and entry.SBOM else [])
            executors.append(LocalExecutor(entry, manager_id, log_dir=log_dir, warm=warm))
        else:
            executors.append(create_executor(entry, manager_id))
    return executors


ExecutorFactory = Callable[[AppConfig, ManagerConfig, str], list[Executor[Any]]]


class FileDropLinks:
    """The backends' `SignedLinks`: download links of slipway's file drop, signed with
    this process's key (api/filedrop.py)."""

    def __init__(self, config: AppConfig, tokens: TokenService) -> None:
        self.config = config
        self.tokens = tokens

    def context(self, record: BuildRecord) -> str:
        from slipway.api.filedrop import context_url

        return context_url(self.config, self.tokens, record)

    def file(self, file_id: str, purpose: str) -> str:
        from slipway.api.filedrop import file_url

        return file_url(self.config, self.tokens, file_id, purpose)


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
        # chosen at start from DB_URI (backends/choose.py)
        self.backend: Backend | None = None
        self._services: list[BackgroundService] = []
        self.orchestrator: Orchestrator | None = None
        self.manager: BuildManager | None = None
        self.control: BuildControl | None = None
        self.tracing: BuildTracing | None = None
        self.tokens: TokenService | None = None
        self.grpc_server: Any = None
        self.grpc_port: int | None = None
        self.api_port: int | None = None
        self.admin_token: str | None = None
        self._uvicorn: Any = None
        self._api_task: asyncio.Task[None] | None = None
        self._api_socket: socket.socket | None = None
        # set at stop: live log streams end, so the API stops without waiting on them
        self.closing = asyncio.Event()

    @property
    def store(self) -> Store[Any]:
        assert self.backend is not None, "the store is chosen at start()"
        return self.backend.store

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": await self.store.ping()}
        if self.orchestrator is not None:
            checks["orchestrator"] = await self.orchestrator.healthy()
        return checks

    @property
    def builds_enabled(self) -> bool:
        return self.manager is not None

    async def start(self) -> None:
        """Raise StartupError (say why, name the setting) when a part cannot start; what
        was started by then is stopped with `stop()`."""
        from slipway.manager.keys import UNPUBLISHED_EVENTS
        from slipway.orchestrator.factory import create_orchestrator

        config = self.config
        # addresses first: one in use stops us before anything runs. grpc's own bind
        # failure names no setting (and its C core prints a line of its own)
        if self.with_api:
            self._api_socket = bind_listener(config.API_LISTEN_ADDRESS, "API_LISTEN_ADDRESS")
        if config.manager is not None and config.FEATURE_BUILD_SUPPORT:
            bind_listener(config.GRPC_LISTEN_ADDRESS, "GRPC_LISTEN_ADDRESS").close()
        key = await asyncio.to_thread(load_or_create, Path(config.DATA_DIR))
        self.backend = backend = await choose_backend(config)
        self.tokens = TokenService(key, config.BUILDMAN_HOSTNAME, backend.store.keys.get)
        try:
            await backend.open(FileDropLinks(config, self.tokens))
        except BackendError as exc:
            raise StartupError(str(exc)) from None
        await self.store.keys.publish(key.kid, key.public_pem)
        self.store.secrets.unlock(await asyncio.to_thread(
            load_or_create_key, config.BUILD_SECRETS_KEY, Path(config.DATA_DIR)))
        if config.SIGNING is not None:  # a key that cannot be read stops the start
            from slipway.signing.keyring import SigningUnavailable, keyring_of

            try:
                await asyncio.to_thread(keyring_of, config.SIGNING)
            except SigningUnavailable as exc:
                raise StartupError(str(exc)) from None
        manager_config = config.manager
        self.orchestrator = create_orchestrator(manager_config, UNPUBLISHED_EVENTS)
        try:
            await self.orchestrator.start()
        except OrchestratorError as exc:  # one line naming ORCHESTRATOR's keys
            raise StartupError(orchestrator_problem(exc, manager_config)) from None
        self.tracing = tracing_from_config(config, self.store)
        self.tracing.start()
        self.control = BuildControl(self.store, self.orchestrator, tracing=self.tracing)
        if manager_config is not None and config.FEATURE_BUILD_SUPPORT:
            manager_id = new_manager_id()
            self.manager = BuildManager(
                app_config=config,
                manager_config=manager_config,
                store=self.store,
                orchestrator=self.orchestrator,
                executors=self.executor_factory(config, manager_config, manager_id),
                tokens=self.tokens,
                manager_id=manager_id,
                tracing=self.tracing,
            )
            self.control.attach_scheduler(self.manager.scheduler.wake)
            try:
                backend.check_builds()
            except BackendError as exc:
                raise StartupError(str(exc)) from None
            from slipway.triggers.service import trigger_services

            # the triggers' statuses, schedules and base-image watch (none in Quay mode)
            for service in [*backend.services(self.control.cancel, self.manager.scheduler.wake),
                            *trigger_services(config, self.store, self.control)]:
                service.start()
                self._services.append(service)
            try:
                self.grpc_server, self.grpc_port = create_grpc_server(
                    self.manager.ctx,
                    config.GRPC_LISTEN_ADDRESS,
                    backend,
                    tls_cert=config.BUILDMAN_TLS_CERT,
                    tls_key=config.BUILDMAN_TLS_KEY,
                )
            except RuntimeError:  # grpc says "Failed to bind to address ..." and no more
                raise _grpc_bind_error(config.GRPC_LISTEN_ADDRESS) from None
            await self.grpc_server.start()
            await self.manager.start()
            log.info("gRPC BuildManager listening on port %s", self.grpc_port)
        if self.with_api:
            await self._start_api()

    async def _start_api(self) -> None:
        import uvicorn

        from slipway.api.app import create_app

        assert self.control is not None and self.tokens is not None
        self.admin_token = await bootstrap_admin(self.store, self.config)
        app = create_app(
            config=self.config,
            store=self.store,
            control=self.control,
            tokens=self.tokens,
            readiness=self.readiness,
            closing=self.closing,
        )
        host, port = _host_port(self.config.API_LISTEN_ADDRESS)
        # Idle keep-alive connections are closed by the client first: clients commonly
        # keep them 5 s (httpx), uvicorn's default too, and a request sent on a connection
        # the server closes at that moment fails with no answer. 65 s is the usual load
        # balancers' idle timeout, plus a margin.
        uv_config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                   lifespan="off", timeout_keep_alive=API_KEEP_ALIVE_S,
                                   timeout_graceful_shutdown=API_SHUTDOWN_GRACE_S)
        self._uvicorn = _embedded_uvicorn(uv_config)
        assert self._api_socket is not None
        serve = self._uvicorn.serve(sockets=[self._api_socket])
        self._api_task = asyncio.get_running_loop().create_task(serve)
        while not self._uvicorn.started:
            if self._api_task.done():
                self._api_task.result()  # raises what stopped it
                raise StartupError("the HTTP API stopped while starting")
            await asyncio.sleep(0.02)
        self.api_port = self._api_socket.getsockname()[1]
        log.info("HTTP API listening on %s:%s", host, self.api_port)

    async def stop(self) -> None:
        """Stop the manager first (its workers stopped, its builds back in the queue, which
        their live logs show), then the API (live log streams end), then the rest."""
        if self.manager is not None:
            await self.manager.shutdown()
        for service in self._services:
            await service.stop()
        self.closing.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            if self._api_task is not None:
                await self._api_task
        if self._api_socket is not None:
            self._api_socket.close()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=1)
        if self.orchestrator is not None:
            await self.orchestrator.close()
        if self.tracing is not None:
            await self.tracing.close()
        if self.backend is not None:
            await self.backend.close()

    def hurry(self) -> None:
        """Make a `stop()` in progress quick (a second SIGTERM or Ctrl-C): workers are
        killed without grace and requests still being answered are cut."""
        if self.manager is not None:
            self.manager.hurry()
        if self._uvicorn is not None:
            self._uvicorn.force_exit = True


async def bootstrap_admin(store: Store[Any], config: AppConfig) -> str | None:
    """On first start (no API token stored yet): the admin token (api/auth.py), and this
    server's context in the CLI's contexts (current only if there was none), so that
    `slipway` on this machine talks to it. The token, or None."""
    from slipway.api.auth import admin_token_file, bootstrap_admin_token
    from slipway.cli.contexts import ContextsError, add_server_context, credentials_file

    token = await bootstrap_admin_token(store, config)
    if token is None:
        return None
    token_file = admin_token_file(config)
    server = str(config.PUBLIC_URL).rstrip("/")
    try:
        added = await asyncio.to_thread(add_server_context, server, token)
    except (OSError, ContextsError) as exc:  # e.g. a read-only home in a container
        log.warning("created the admin API token (in %s); could not add it to the CLI's "
                    "contexts in %s: %s", token_file, credentials_file(), exc)
        return token
    log.info("created the admin API token (in %s); %s", token_file, added.news())
    return token


def _grpc_bind_error(address: str) -> StartupError:
    """grpc names no cause: find it by binding the address ourselves."""
    try:
        bind_listener(address, "GRPC_LISTEN_ADDRESS").close()
    except StartupError as exc:
        return exc
    return StartupError(f"GRPC_LISTEN_ADDRESS: cannot listen on {address}")
