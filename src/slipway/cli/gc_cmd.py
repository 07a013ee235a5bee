"""`slipway gc [--dry-run]`: one housekeeping pass by hand, with the server's config:
archive the logs of ended builds, delete what RETENTION says has expired and the uploaded
contexts no build needs (docs/data-lifecycle.md). --dry-run only counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from slipway.cli.output import stderr_console, stdout_console

if TYPE_CHECKING:
    from slipway.config.models import AppConfig
    from slipway.store.records import HousekeepingReport

QUAY_MODE = ("DB_URI is Quay's database: Quay archives and expires its own build logs "
             "and builds; slipway has nothing of its own to collect")


def register(app: typer.Typer) -> None:
    @app.command("gc")
    def gc(
        config: Path | None = typer.Option(
            None, "--config", "-c", envvar="SLIPWAY_CONFIG",
            help="The server's config.yaml (its DB_URI, LOG_ARCHIVE, RETENTION). Without "
            "one: the embedded default."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Say what would be archived and removed; change "
            "nothing."),
        as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
    ) -> None:
        """Archive ended builds' logs and remove expired builds, archived logs and
        uploaded contexts now, as the manager does every RETENTION.INTERVAL."""
        from slipway.config.errors import ConfigError
        from slipway.config.loader import load_config

        err = stderr_console()
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            for message in exc.messages:
                err.print(f"error: {message}", markup=False)
            raise typer.Exit(1) from None
        report = asyncio.run(_run(loaded.config, dry_run))
        if report is None:
            err.print(QUAY_MODE, markup=False)
            return
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            stdout_console().print("\n".join(describe(report)), markup=False)


async def _run(config: AppConfig, dry_run: bool) -> HousekeepingReport | None:
    from slipway.backends.choose import choose_backend
    from slipway.backends.sql import SqlBackend

    backend = await choose_backend(config)
    if not isinstance(backend, SqlBackend):
        return None
    try:
        await backend.store.open()
        return await backend.housekeeping().run(dry_run=dry_run)
    except Exception as exc:  # one line, not a traceback: the storage, the database
        stderr_console().print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    finally:
        await backend.close()


def describe(report: HousekeepingReport) -> list[str]:
    """The report as a person reads it."""
    would = "would " if report.dry_run else ""
    archived = "archive" if report.dry_run else "archived"
    deleted = "delete" if report.dry_run else "deleted"
    lines = [
        f"{would}{archived} {report.logs_archived} build logs "
        f"({report.log_lines_archived} lines"
        + ("" if report.dry_run else f", {size(report.archive_bytes_written)} written")
        + ")",
        f"{would}{deleted} {report.builds_deleted} builds "
        f"({report.log_lines_deleted} log lines in the database, "
        f"{report.archives_deleted} archived logs of {size(report.archive_bytes_deleted)})",
        f"{would}{deleted} {report.contexts_deleted} uploaded contexts "
        f"({size(report.context_bytes_deleted)})",
    ]
    if report.audit_entries_deleted:
        lines.append(f"{would}{deleted} {report.audit_entries_deleted} audit log entries")
    if report.logs_left:
        lines.append(f"{report.logs_left} logs could not be archived this time (see the "
                     "log); they stay in the database")
    if not report.dry_run and report.database_bytes_freed:
        lines.append(f"database gave back {size(report.database_bytes_freed)}")
    lines.append(f"database size: {size(report.database_size)}")
    if report.dry_run:
        lines.append("dry run: nothing was changed")
    return lines


def size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} bytes"
