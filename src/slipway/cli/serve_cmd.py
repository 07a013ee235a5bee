"""`slipway serve`: the manager, gRPC service and HTTP API in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from slipway.config.models import AppConfig
    from slipway.local_registry import LocalRegistry
    from slipway.server import SlipwayServer

# soft_wrap: each message stays one line (a log collector, grep), whatever the width
err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            envvar="SLIPWAY_CONFIG",
            help="Quay-style config.yaml. Without one: the embedded default "
            "(SQLite, in-memory orchestrator, local executor).",
        ),
        log_level: str = typer.Option("info", help="debug, info, warning or error."),
        registry: bool = typer.Option(
            False,
            "--registry",
            help="Also run a local registry for the builds (Debian's docker-registry, "
            "plain HTTP, no authentication), its images in DATA_DIR/registry; it stops "
            "with serve.",
        ),
        registry_address: str = typer.Option(
            "127.0.0.1:5000",
            "--registry-address",
            metavar="HOST:PORT",
            help="Where --registry listens: a loopback address.",
        ),
    ) -> None:
        """Run the build manager, its gRPC service and the HTTP API."""
        from slipway.config.errors import ConfigError
        from slipway.config.loader import load_config

        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        _quiet_start_up_logs()
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            for message in exc.messages:
                err.print(f"[red]error:[/red] {message}", highlight=False)
            raise typer.Exit(1) from None
        for warning in loaded.warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        app_config = loaded.config
        if registry:
            app_config = _with_local_registry(app_config, registry_address)
        asyncio.run(_serve(app_config, embedded=config is None,
                           registry_address=registry_address if registry else None))


def _with_local_registry(config: AppConfig, address: str) -> AppConfig:
    """The config with --registry's address allowed and plain HTTP (the embedded default
    allows it already; a config file's lists gain it for this run only)."""
    allowed = [*config.ALLOWED_REGISTRIES]
    insecure = [*config.INSECURE_REGISTRIES]
    if not config.registry_allowed(address):
        allowed.append(address)
    if not config.registry_is_plain_http(address):
        insecure.append(address)
    return config.model_copy(update={"ALLOWED_REGISTRIES": allowed,
                                     "INSECURE_REGISTRIES": insecure})


# logged at INFO on every start, of interest to no one running slipway
_QUIET_LOGGERS = ("alembic.runtime.plugins",)
_QUIET_MESSAGES = ("Context impl ", "Will assume ")  # alembic.runtime.migration


def _quiet_start_up_logs() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(
        lambda record: not record.getMessage().startswith(_QUIET_MESSAGES))


def _running_message(server: SlipwayServer) -> str:
    config = server.config
    api = f"API on {config.API_LISTEN_ADDRESS.rsplit(':', 1)[0]}:{server.api_port}"
    if server.builds_enabled:
        return f"slipway is running: {api}, gRPC for build workers on port {server.grpc_port}"
    if not config.FEATURE_BUILD_SUPPORT:
        return (f"slipway is running: {api}; builds are off (FEATURE_BUILD_SUPPORT: false), "
                "so no build manager or gRPC service runs")
    return (f"slipway is running: {api}; no build manager runs here (BUILD_MANAGER: "
            "[external]): builds wait in the queue for a manager started elsewhere")


def _stopping_message(server: SlipwayServer, how: str) -> str:
    running = server.manager.running if server.manager is not None else 0
    if running == 0:
        return f"stopping ({how})"
    builds, workers = (("1 running build goes", "its worker is") if running == 1 else
                       (f"{running} running builds go", "their workers are"))
    return (f"stopping ({how}): {builds} back to the queue once {workers} stopped; press "
            "Ctrl-C again (or send SIGTERM again) to kill them at once")


async def _serve(config: AppConfig, embedded: bool = False,
                 registry_address: str | None = None) -> None:
    from slipway.local_registry import LocalRegistryError, start_local_registry

    local_registry: LocalRegistry | None = None
    if registry_address is not None:
        try:
            local_registry = await start_local_registry(registry_address,
                                                        Path(config.DATA_DIR))
        except LocalRegistryError as exc:
            err.print(f"[red]error:[/red] slipway could not start: {exc}", highlight=False)
            raise typer.Exit(1) from None
    try:
        await _serve_until_stopped(config, embedded, local_registry)
    finally:
        if local_registry is not None:  # after the server: a build may be pushing
            await local_registry.stop()


async def _serve_until_stopped(config: AppConfig, embedded: bool,
                               local_registry: LocalRegistry | None) -> None:
    from slipway.api.auth import ADMIN_TOKEN_FILE
    from slipway.api.ui import sign_in_hint, sign_in_link
    from slipway.server import SlipwayServer, StartupError

    server = SlipwayServer(config)
    signals: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig.name)
    try:
        await server.start()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, StartupError) else f"{type(exc).__name__}: {exc}"
        err.print(f"[red]error:[/red] slipway could not start: {reason}", highlight=False)
        try:
            await server.stop()  # what had started: nothing stays bound or running
        except Exception as stop_error:
            logging.getLogger("slipway.server").debug("stopping after a failed start: %s",
                                                      stop_error)
        raise typer.Exit(1) from None
    assert server.backend is not None  # chosen by start()
    if server.backend.banner is not None:
        err.print(server.backend.banner, highlight=False)
    err.print(_running_message(server), highlight=False)
    if local_registry is not None:
        err.print(f"local registry: {local_registry.address} (plain HTTP, images in "
                  f"{local_registry.storage}); tag images {local_registry.address}/"
                  "NAMESPACE/NAME:TAG", highlight=False)
    public_url = str(config.PUBLIC_URL).rstrip("/")
    err.print(f"web UI: {public_url}/", highlight=False)
    if server.admin_token:
        err.print("an admin token was created and stored for the slipway CLI", highlight=False)
    if server.admin_token and embedded:
        # the embedded default is one person's machine: hand them a link that signs in
        link = sign_in_link(public_url, server.admin_token)
        err.print(f"sign in to the web UI as admin: {link} (the link holds the admin "
                  "token: keep it to yourself)", highlight=False)
    else:
        # a configured server's output may be shipped to a log store: where the token
        # is, not the token
        err.print(sign_in_hint(Path(config.DATA_DIR) / ADMIN_TOKEN_FILE), highlight=False)
    first = await signals.get()
    err.print(_stopping_message(server, first), highlight=False)
    stopping = asyncio.ensure_future(server.stop())
    forced = False
    while not stopping.done():
        second = asyncio.ensure_future(signals.get())
        await asyncio.wait({stopping, second}, return_when=asyncio.FIRST_COMPLETED)
        if second.done() and not forced:
            forced = True
            err.print(f"forced stop ({second.result()}): killing the workers now", highlight=False)
            server.hurry()
        second.cancel()
    await stopping
    err.print("stopped", highlight=False)
