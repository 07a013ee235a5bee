"""`slipway login`, `logout` and `context list/use/show/remove`: the servers the CLI
knows (cli/contexts.py)."""

from __future__ import annotations

import json
import sys

import typer

from slipway.cli.client import ApiClient, CliError, Credentials
from slipway.cli.contexts import (
    Context,
    ContextsError,
    credentials_file,
    edit_contexts,
    name_for,
    normal_url,
    read_contexts,
)
from slipway.cli.help_format import MARKUP_MODE
from slipway.cli.output import fail, stderr_console, stdout_console
from slipway.cli.tables import cut, elided, fixed, make_table, table_console

app = typer.Typer(help="The slipway servers the CLI knows, one of them current.",
                  no_args_is_help=True, rich_markup_mode=MARKUP_MODE)


def _read_token(token_stdin: bool, server: str) -> str:
    if token_stdin:
        token = sys.stdin.read().strip()
        if not token:
            raise CliError("--token-stdin: standard input was empty; pipe the token in, e.g. "
                           f"`cat admin-token | slipway login {server} --token-stdin`")
        return token
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the token: pipe it in with --token-stdin")
    token = str(typer.prompt(f"API token for {server}", hide_input=True)).strip()
    if not token:
        raise CliError("no token given; nothing was saved")
    return token


def _scopes_text(scopes: dict[str, str]) -> str:
    parts = [f"{role} on {'every namespace' if ns == '*' else ns}"
             for ns, role in sorted(scopes.items())]
    return ", ".join(parts) or "no scopes"


def login(
    server: str = typer.Argument(..., metavar="URL", help="The server's API URL."),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Context name (default HOST:PORT)."),
    token_stdin: bool = typer.Option(
        False, "--token-stdin", help="Read the token from standard input (else a prompt)."
    ),
    sso: bool = typer.Option(
        False, "--sso", help="Sign in with the server's single sign-on, in a browser "
        "(the sign-in expires; `slipway logout` ends it)."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="With --sso: print the address to open, open no "
        "browser."),
) -> None:
    """Sign in to a slipway server: the token is checked with the server, then saved as a
    context, which becomes the current one."""
    if not server.startswith(("http://", "https://")):
        fail(f"{server!r} is not a URL; write e.g. http://127.0.0.1:8700")
    server = normal_url(server)
    name = name or name_for(server)
    try:
        if sso:
            from slipway.cli.sso_login import sign_in

            token = sign_in(server, lambda text: stderr_console().print(text, markup=False),
                            open_browser=not no_browser)
        else:
            token = _read_token(token_stdin, server)
        with ApiClient(Credentials(server, token)) as client:
            info = client.info()
            if info is not None:
                client.signed_in()
        if info is None:
            raise CliError(f"{server} does not look like a slipway server (no "
                           "/api/v1/slipway/info there); check the URL; nothing was saved")
        with edit_contexts() as contexts:
            contexts.put(Context(name, server, token))
            contexts.current = name
    except (CliError, ContextsError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"could not save the context in {credentials_file()}: {exc}")
    stdout_console().print(
        f"Logged in to {server} as {info['token']['name']!r} "
        f"({_scopes_text(info['token']['scopes'])}); context {name!r} is now current",
        markup=False,
    )


def logout(
    name: str | None = typer.Argument(
        None, metavar="NAME", help="Context to remove (default: the current)."),
) -> None:
    """Forget a context and its token. A single sign-on's token is revoked on the server
    too; an API token stays valid there (`slipway token revoke` ends it)."""
    try:
        contexts = read_contexts()
        wanted = name or contexts.current
        chosen = contexts.get(wanted) if wanted else None
    except ContextsError as exc:
        fail(str(exc))
    if chosen is not None and chosen.token:
        try:
            with ApiClient(Credentials(chosen.server, chosen.token), timeout=5) as client:
                ended = client.request("POST", "/api/v1/slipway/signout")
            if ended and ended.get("revoked"):
                stdout_console().print(f"Signed out of {chosen.server}", markup=False)
        except CliError:
            pass  # a server away, or a token already ended: forgetting it still holds
    _remove(name)


def _remove(name: str | None) -> None:
    try:
        with edit_contexts() as contexts:
            name = name or contexts.current
            if name is None:
                raise CliError("there is no current context to remove; name one "
                               "(`slipway context list`)")
            removed = contexts.remove(name)
    except (CliError, ContextsError) as exc:
        fail(str(exc))
    stdout_console().print(f"Removed context {removed.name!r} ({removed.server})", markup=False)


@app.command("list")
def list_contexts(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (tokens left out)."),
) -> None:
    """The contexts; the current one is marked with *."""
    try:
        contexts = read_contexts()
    except ContextsError as exc:
        fail(str(exc))
    rows = sorted(contexts.entries.values(), key=lambda c: c.name)
    if as_json:
        typer.echo(json.dumps([{"name": c.name, "server": c.server,
                                "current": c.name == contexts.current} for c in rows]))
        return
    if not rows:
        stderr_console().print("no contexts yet: `slipway login URL` adds one (and `slipway serve` "
                     "adds its own on first start)", markup=False)
        return
    table = make_table(fixed("CURRENT"), elided("NAME"), elided("SERVER"))
    for c in rows:
        table.add_row("*" if c.name == contexts.current else "", cut(c.name), cut(c.server))
    table_console().print(table)


@app.command("use")
def use(
    name: str = typer.Argument(..., metavar="NAME", help="Context to make current."),
) -> None:
    """Make NAME the current context."""
    try:
        with edit_contexts() as contexts:
            chosen = contexts.get(name)
            contexts.current = chosen.name
    except ContextsError as exc:
        fail(str(exc))
    stdout_console().print(f"Current context: {chosen.name} ({chosen.server})", markup=False)


@app.command("show")
def show() -> None:
    """The current context's name and server."""
    try:
        contexts = read_contexts()
    except ContextsError as exc:
        fail(str(exc))
    if contexts.current is None:
        fail("there is no current context; `slipway login URL` or `slipway context use NAME`")
    current = contexts.get(contexts.current)
    stdout_console().print(f"{current.name} {current.server}", markup=False)


@app.command("remove")
def remove(
    name: str = typer.Argument(..., metavar="NAME", help="Context to remove."),
) -> None:
    """Forget context NAME and its token."""
    _remove(name)


def register(main: typer.Typer) -> None:
    main.command("login")(login)
    main.command("logout")(logout)
    main.add_typer(app, name="context")
