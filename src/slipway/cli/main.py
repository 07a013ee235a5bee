"""The `slipway` command. Each group of commands lives in its own module."""

from __future__ import annotations

import typer

from slipway import __version__
from slipway.cli import (
    audit_cmd,
    builds_cmd,
    builds_view_cmd,
    config_cmd,
    context_cmd,
    deploy_cmd,
    gc_cmd,
    help_format,
    openshift_cmd,
    serve_cmd,
    signing_cmd,
    token_cmd,
    trigger_cmd,
    worker_cmd,
)
from slipway.cli.help_format import MARKUP_MODE

help_format.use()

app = typer.Typer(
    name="slipway",
    help="Container-image build service, compatible with Red Hat Quay's build manager.",
    no_args_is_help=True, rich_markup_mode=MARKUP_MODE,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"slipway {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """slipway: build container images on ephemeral, isolated workers."""


app.add_typer(config_cmd.app, name="config")
app.add_typer(openshift_cmd.app, name="openshift")
app.add_typer(deploy_cmd.app, name="deploy")
app.add_typer(token_cmd.app, name="token")
serve_cmd.register(app)
worker_cmd.register(app)
builds_cmd.register(app)
builds_view_cmd.register(app)
context_cmd.register(app)
gc_cmd.register(app)
trigger_cmd.register(app)
audit_cmd.register(app)
signing_cmd.register(app)


if __name__ == "__main__":
    app()
