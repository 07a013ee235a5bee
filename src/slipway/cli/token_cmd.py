"""`slipway token create|list|revoke`: API tokens with namespace scopes (docs/access.md).
A token is shown once, when it is made; the list never shows one."""

from __future__ import annotations

import json
from typing import Any

import typer

from slipway.cli.access_format import parse_scope, scopes_text, when
from slipway.cli.errors import CliError
from slipway.cli.following import ContextOpt, ServerOpt, TokenOpt, api_client
from slipway.cli.output import fail, stderr_console
from slipway.cli.tables import cut, elided, fixed, make_table, table_console

app = typer.Typer(help="API tokens: make one for a script or a colleague, list them, "
                  "revoke one (docs/access.md).", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., metavar="NAME", help="What the token is for, e.g. ci-web."),
    scope: list[str] = typer.Option(
        ..., "--scope", metavar="NAMESPACE=ROLE",
        help="A namespace and the role on it (read, write, admin; * for every "
        "namespace); repeat for more. At most what your own token holds."),
    expires: str | None = typer.Option(
        None, "--expires", metavar="DURATION",
        help="How long it lives: 30d, 12h, 90m; default until revoked."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole answer as JSON."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Make a token and print it (on standard output, alone: it is shown this once)."""
    try:
        scopes = dict(parse_scope(s) for s in scope)
        with api_client(server, token, context) as client:
            made = client.create_token(name, scopes, expires)
    except CliError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(made))
        return
    stderr_console().print(
        f"token {made['name']!r} (id {made['id']}): {scopes_text(made['scopes'])}, "
        f"expires {when(made['expires'], 'never')}. It is shown only now: keep it.",
        markup=False)
    typer.echo(made["token"])


@app.command("list")
def list_tokens(
    as_json: bool = typer.Option(False, "--json", help="Print JSON: an array of tokens."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """The tokens you made, and those of the namespaces you are admin of (never a
    token itself): name, scopes, who made it, when, when it expires, when last used."""
    try:
        with api_client(server, token, context) as client:
            items = client.tokens()
    except CliError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(items))
        return
    table = make_table(fixed("ID"), elided("NAME"), elided("SCOPES"), elided("CREATED BY"),
                       fixed("CREATED (UTC)"), fixed("EXPIRES"), fixed("LAST USED"),
                       fixed("STATE"))
    for t in items:
        table.add_row(t["id"][:8], cut(t["name"]), cut(scopes_text(t["scopes"])),
                      cut(t["created_by"] or "(server)"), when(t["created"]),
                      when(t["expires"], "never"), when(t["last_used"], "never"),
                      t["state"])
    table_console().print(table)


def _pick(items: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """A token by its id, a unique start of it (at least 4 characters), or its name
    (when one active token has it)."""
    exact = [t for t in items if t["id"] == wanted]
    if exact:
        return exact[0]
    started = [t for t in items if len(wanted) >= 4 and t["id"].startswith(wanted)]
    named = [t for t in items if t["name"] == wanted and t["state"] == "active"]
    for found in (started, named):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(t["id"][:8] for t in found)
            raise CliError(f"{wanted!r} names more than one token ({ids}); give its id")
    raise CliError(f"no token {wanted!r} that you may revoke; see `slipway token list`")


@app.command("revoke")
def revoke(
    wanted: str = typer.Argument(
        ..., metavar="TOKEN_ID", help="The token's id (or a unique start of it, as "
        "`slipway token list` shows), or its name."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Revoke a token: every manager refuses it from now on."""
    try:
        with api_client(server, token, context) as client:
            chosen = _pick(client.tokens(), wanted)
            done = client.revoke_token(chosen["id"])
    except CliError as exc:
        fail(str(exc))
    stderr_console().print(f"revoked token {done['name']!r} (id {done['id']})",
                           markup=False)
