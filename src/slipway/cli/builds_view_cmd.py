"""`slipway builds`, `logs`, `cancel`: the builds already started. Each takes a build id
whole or as a unique start of it (cli/build_ids.py)."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import typer

from slipway.cli.build_ids import resolve_build_id, short_id
from slipway.cli.errors import CliError
from slipway.cli.following import (
    BuildIdArg,
    ContextOpt,
    ReconnectOpt,
    RepositoryArg,
    ServerOpt,
    TokenOpt,
    api_client,
    follow,
    print_entry,
    reconnect_policy,
    repository_arg,
    server_lost,
    stopped,
    waiting_for,
)
from slipway.cli.output import fail, stdout_console
from slipway.cli.reconnect import ServerLost
from slipway.cli.tables import (
    cut,
    elided,
    fixed,
    is_bounded,
    make_table,
    one_line,
    table_console,
    tags_cell,
)

DIGEST_SHOWN = 19  # sha256: and 12 hex digits, as `podman images` shows
TAGS_WIDTH = 14  # `latest +2`, a version tag and its count


def builds(
    repository: str = RepositoryArg,
    build_id: str | None = typer.Argument(
        None, metavar="BUILD_ID",
        help="Show this build in full (its id, or a unique start of it) instead of the "
        "list."),
    limit: int = typer.Option(
        20, "--limit", metavar="N", help="How many builds to list, newest first (1-100)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: an array of builds, or the one build."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """List a repository's builds, newest first; with BUILD_ID, show that build in full.

    The list fits the terminal: 8-character ids (any command takes them), the first tag
    and how many more, an error cut to one line (`slipway builds REPOSITORY BUILD_ID`
    shows it whole)."""
    try:
        repository = repository_arg(repository)
        if not 1 <= limit <= 100:
            raise CliError(f"--limit {limit}: give a number from 1 to 100")
        with api_client(server, token, context) as client:
            if build_id is not None:
                one = client.get_build(repository, resolve_build_id(client, repository,
                                                                    build_id))
            else:
                items = client.list_builds(repository, limit)
                if not items:
                    raise CliError(
                        f"no builds in repository {repository} on {client.server}: it is "
                        "unknown there (slipway knows a repository once a build was started "
                        "in it); check the name"
                    )
    except CliError as exc:
        fail(str(exc))
    if build_id is not None:
        if as_json:
            typer.echo(json.dumps(one))
        else:
            _show(one)
        return
    if as_json:
        typer.echo(json.dumps(items))
        return
    console = table_console()
    # on a terminal the detail (an error's start) matters more than a long tag
    tags_width = TAGS_WIDTH if is_bounded(console) else None
    table = make_table(fixed("ID"), fixed("PHASE"), fixed("STARTED (UTC)"),
                       elided("TAGS", tags_width), elided("DETAIL"))
    for b in items:
        table.add_row(short_id(b["id"]), b["phase"], _short_date(b["started"]),
                      cut(tags_cell(b["tags"])), cut(_detail(b)))
    console.print(table)


def _detail(build: dict[str, Any]) -> str:
    digest = build.get("image_digest") or ""
    if digest:
        return str(digest)[:DIGEST_SHOWN]
    return one_line(str(build.get("error") or waiting_for(build) or ""))


def _show(build: dict[str, Any]) -> None:
    """One build, field by field, nothing cut."""
    attempts = build.get("attempts") or []
    rows = [
        ("id", build.get("id")),
        ("phase", build.get("phase")),
        ("repository", "/".join(str((build.get("repository") or {}).get(k, ""))
                                for k in ("namespace", "name"))),
        ("tags", ", ".join(build.get("tags") or [])),
        ("started", _short_date(str(build.get("started") or ""))),
        ("completed", _short_date(str(build.get("completed") or ""))
         if build.get("completed") else None),
        ("digest", build.get("image_digest")),
        ("error", build.get("error")),
        ("waiting for", waiting_for(build)),
        ("executor", build.get("executor")),
        ("attempts", len(attempts) if attempts else None),
        ("retries left", build.get("retries_remaining")),
    ]
    out = stdout_console()
    for name, value in rows:
        if value is not None and value != "":
            out.print(f"{name + ':':<14}{value}", markup=False, soft_wrap=True)


def logs(
    repository: str = RepositoryArg,
    build_id: str = BuildIdArg,
    follow_log: bool = typer.Option(
        False, "--follow", "-f", help="Stream the log live until the build ends."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per log entry and line (JSON Lines)."),
    reconnect_timeout: str = ReconnectOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Print a build's log (with --follow, live until the build ends).

    Exit status with --follow: 0 once the build has ended (whatever its result); 3 the
    server went away for longer than --reconnect-timeout."""
    out = stdout_console()
    full_id = build_id
    try:
        repository = repository_arg(repository)
        reconnect = reconnect_policy(reconnect_timeout, out)
        with api_client(server, token, context) as client:
            full_id = resolve_build_id(client, repository, build_id)
            if as_json:
                entries = (e.data for e in client.stream(repository, full_id,
                                                         reconnect=reconnect)
                           if e.kind == "log") if follow_log \
                    else iter(client.logs(repository, full_id)["logs"])
                for entry in entries:
                    typer.echo(json.dumps(entry))
                return
            if follow_log:
                final = follow(client, repository, full_id, out, reconnect)
                out.print(f"build {full_id}: {final.get('phase')}", markup=False)
                return
            for entry in client.logs(repository, full_id)["logs"]:
                print_entry(out, entry)
    except ServerLost as exc:
        server_lost(exc, repository, full_id, server, context)
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        stopped(repository, full_id, server, context)


def cancel(
    repository: str = RepositoryArg,
    build_id: str = BuildIdArg,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Cancel a build that has not started pushing."""
    try:
        repository = repository_arg(repository)
        with api_client(server, token, context) as client:
            full_id = resolve_build_id(client, repository, build_id)
            client.cancel(repository, full_id)
    except CliError as exc:
        fail(str(exc))
    stdout_console().print(f"build {full_id} cancelled", markup=False)


def _short_date(rfc2822: str) -> str:
    """`2024-05-01 12:00`: the minute is enough to tell builds apart in a list."""
    try:
        return email.utils.parsedate_to_datetime(rfc2822).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return rfc2822


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("builds")(builds)
    app.command("logs")(logs)
    app.command("cancel")(cancel)
