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

err = Console(stderr=True)


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
    ) -> None:
        """Run the build manager, its gRPC service and the HTTP API."""
        from slipway.config.errors import ConfigError
        from slipway.config.loader import load_config

        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            for message in exc.messages:
                err.print(f"[red]error:[/red] {message}", highlight=False)
            raise typer.Exit(1) from None
        for warning in loaded.warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        asyncio.run(_serve(loaded.config, embedded=config is None))


async def _serve(config: AppConfig, embedded: bool = False) -> None:
    from slipway.api.ui import sign_in_link
    from slipway.server import SlipwayServer

    server = SlipwayServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except Exception as exc:
        err.print(f"[red]error:[/red] slipway could not start: {exc}", highlight=False)
        await server.stop()
        raise typer.Exit(1) from None
    err.print(
        f"slipway is running: API on port {server.api_port}, gRPC on port {server.grpc_port}",
        highlight=False,
    )
    public_url = str(config.PUBLIC_URL).rstrip("/")
    err.print(f"web UI: {public_url}/", highlight=False, soft_wrap=True)
    if server.admin_token:
        err.print("an admin token was created and stored for the slipway CLI", highlight=False)
        if embedded:
            # the embedded default is one person's machine: hand them a link that signs in
            link = sign_in_link(public_url, server.admin_token)
            err.print(f"sign in to the web UI as admin: {link} (the link holds the admin "
                      "token: keep it to yourself)",
                      highlight=False, soft_wrap=True)
    await stop.wait()
    err.print("stopping: workers are stopped and running builds go back to the queue")
    await server.stop()
