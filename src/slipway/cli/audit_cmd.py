"""`slipway audit`: the audit log, filtered, as a table or as JSON Lines
(docs/access.md)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer

from slipway.cli.access_format import point_in_time, when
from slipway.cli.errors import CliError
from slipway.cli.following import ContextOpt, ServerOpt, TokenOpt, api_client
from slipway.cli.output import fail
from slipway.cli.tables import cut, elided, fixed, make_table, table_console


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit(
        namespace: str | None = typer.Option(None, "--namespace", help="Only this "
                                             "namespace's entries."),
        actor: str | None = typer.Option(None, "--actor", help="Only this actor's."),
        action: str | None = typer.Option(
            None, "--action", help="Only this action: build.start, build.cancel, "
            "build.rebuild, token.create, token.revoke, auth.sign_in, auth.failed, "
            "auth.sign_out, trigger.create, trigger.update, trigger.delete, trigger.run."),
        since: str | None = typer.Option(
            None, "--since", metavar="WHEN", help="From this time on: a date "
            "(2026-12-01, UTC) or a time ago (90m, 2h, 7d)."),
        until: str | None = typer.Option(None, "--until", metavar="WHEN",
                                         help="Before this time (as --since)."),
        limit: int = typer.Option(100, "--limit", metavar="N",
                                  help="Most entries shown, oldest first (1-1000)."),
        jsonl: bool = typer.Option(
            False, "--jsonl", help="Every matching entry as JSON Lines (no --limit): an "
            "export."),
        server: str | None = ServerOpt,
        token: str | None = TokenOpt,
        context: str | None = ContextOpt,
    ) -> None:
        """Who did what, from where: builds started, cancelled and rebuilt, tokens made
        and revoked, sign-ins. Needs an admin token (of the namespaces it shows)."""
        now = time.time()
        try:
            if not 1 <= limit <= 1000:
                raise CliError(f"--limit {limit}: give a number from 1 to 1000")
            params: dict[str, Any] = {k: v for k, v in {
                "namespace": namespace, "actor": actor, "action": action,
                "since": point_in_time(since, "--since", now) if since else None,
                "until": point_in_time(until, "--until", now) if until else None,
            }.items() if v is not None}
            with api_client(server, token, context) as client:
                if jsonl:
                    for line in client.audit_export(params):
                        if line:
                            sys.stdout.write(line + "\n")
                    return
                entries = client.audit({**params, "limit": limit})["entries"]
        except CliError as exc:
            fail(str(exc))
        table = make_table(fixed("TIME (UTC)"), elided("ACTOR"), fixed("ACTION"),
                           elided("NAMESPACE"), elided("TARGET"), elided("FROM"),
                           elided("DETAILS"))
        for e in entries:
            table.add_row(when(e["at"]), cut(e["actor"]), e["action"],
                          cut(e["namespace"] or ""), cut(e["target"] or ""),
                          cut(e["source"] or ""),
                          cut(json.dumps(e["details"], sort_keys=True)
                              if e["details"] else ""))
        table_console().print(table)
