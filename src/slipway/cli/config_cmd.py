"""`slipway config check FILE` / `slipway config show [FILE]`: validate a config.yaml and
print the effective configuration (secrets masked) or every error."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from slipway.cli.help_format import MARKUP_MODE

app = typer.Typer(help="Check and show configuration.",
    no_args_is_help=True, rich_markup_mode=MARKUP_MODE)


StrictOpt = typer.Option(
    False, "--strict", help="Exit 1 on warnings too (unknown keys, duplicates): for CI."
)


def _report(path: Path | None, strict: bool = False) -> None:
    # imported here: the config's models are not what `slipway build` waits for at start
    import yaml

    from slipway.config import ConfigError, effective_config, load_config

    # markup off: messages contain YAML paths like BUILD_MANAGER[1]; soft_wrap: one per line
    err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        for warning in exc.warnings:
            err.print(f"warning: {warning}", style="yellow")
        for message in exc.messages:
            err.print(f"error: {message}", style="red")
        raise typer.Exit(1) from None
    for warning in loaded.warnings:
        err.print(f"warning: {warning}", style="yellow")
    typer.echo(
        yaml.safe_dump(effective_config(loaded.config), sort_keys=False, allow_unicode=True),
        nl=False,
    )
    if strict and loaded.warnings:
        count = len(loaded.warnings)
        err.print(
            f"error: {count} warning{'s' if count > 1 else ''} and --strict: fix "
            f"{'them' if count > 1 else 'it'}, or drop --strict to accept "
            f"{'them' if count > 1 else 'it'}",
            style="red",
        )
        raise typer.Exit(1)


@app.command("check")
def check(
    file: Path = typer.Argument(..., metavar="FILE", help="The config.yaml to check."),
    strict: bool = StrictOpt,
) -> None:
    """Validate FILE; print the effective configuration (defaults filled in, secrets
    masked), or every error with its YAML path and exit 1. Warnings (unknown keys) leave
    the exit status 0 unless --strict."""
    _report(file, strict)


@app.command("show")
def show(
    file: Path | None = typer.Argument(
        None, metavar="FILE", help="config.yaml; default: the embedded default configuration."
    ),
    strict: bool = StrictOpt,
) -> None:
    """Print the effective configuration of FILE, or of the embedded default."""
    _report(file, strict)
