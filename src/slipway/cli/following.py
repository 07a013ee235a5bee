"""What the build commands share: the server options, the client, and following a
build's log live (spinner, reconnecting when the server goes away, re-attach hints)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from slipway.cli.client import ApiClient, load_credentials
from slipway.cli.errors import CliError
from slipway.cli.output import stderr_console
from slipway.cli.reconnect import (
    DEFAULT_RECONNECT,
    EXIT_INTERRUPTED,
    EXIT_SERVER_LOST,
    RECONNECT_ENV,
    Reconnect,
    ServerLost,
    parse_duration,
)
from slipway.domain.names import InvalidName, check_namespace, check_repository

FINAL = {"complete", "error", "internalerror", "cancelled", "expired"}

ServerOpt = typer.Option(
    None, "--server", metavar="URL",
    help="API URL (default: SLIPWAY_URL, else the context's).")
TokenOpt = typer.Option(
    None, "--token", metavar="TOKEN",
    help="API token (default: SLIPWAY_TOKEN, else the context's).")
ContextOpt = typer.Option(
    None, "--context", metavar="NAME",
    help="CLI context (default: SLIPWAY_CONTEXT, else the current one).")
ReconnectOpt = typer.Option(
    DEFAULT_RECONNECT, "--reconnect-timeout", envvar=RECONNECT_ENV, metavar="DURATION",
    help="While following: how long to keep reconnecting when the server goes away (a "
    "restart, a failover to another manager), e.g. 90s, 5m, 1h; 0 gives up at once. "
    "Then exit 3, printing how to re-attach.")
RepositoryArg = typer.Argument(
    ..., metavar="REPOSITORY", help="The repository, as NAMESPACE/REPO, e.g. demo/hello.")
BuildIdArg = typer.Argument(
    ..., metavar="BUILD_ID",
    help="The build's id, or a unique start of it (at least 4 characters; the 8 that "
    "`slipway builds` and the web UI show).")

STYLES = {"phase": "bold magenta", "command": "bold cyan", "error": "red"}
WAIT_POLL_S = 3.0


@contextmanager
def api_client(
    server: str | None, token: str | None, context: str | None = None
) -> Iterator[ApiClient]:
    with ApiClient(load_credentials(server, token, context)) as client:
        yield client


def repository_arg(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 2:
        raise CliError(f"{value!r}: write NAMESPACE/REPO, e.g. demo/hello")
    try:
        check_namespace(parts[0])
        check_repository(parts[1])
    except InvalidName as exc:
        raise CliError(f"{value!r}: {exc}") from None
    return value


def reconnect_policy(timeout: str, out: Console | None) -> Reconnect:
    """--reconnect-timeout, with its notices printed where the user looks: beside the
    live log on a terminal, else on standard error (standard output stays the log)."""
    patience = parse_duration(timeout)
    console = out if out is not None and out.is_terminal else stderr_console()

    def notify(text: str) -> None:
        console.print(text, style="yellow", markup=False, soft_wrap=True)

    return Reconnect(patience, notify)


def print_entry(out: Console, entry: dict[str, Any]) -> None:
    kind = str(entry.get("type") or "")
    message = str(entry.get("message", ""))
    if kind == "phase":
        message = f"── {message}"
    # soft_wrap: log lines are printed whole (no re-wrapping, copy-pastable)
    out.print(message, style=STYLES.get(kind), markup=False, soft_wrap=True)


def waiting_for(build: dict[str, Any]) -> str | None:
    status = build.get("status")
    reason = status.get("waiting_for") if isinstance(status, dict) else None
    return str(reason) if reason else None


class _Spinner:
    """The phase on a spinner; while the build waits, why (polled from the server)."""

    def __init__(self, client: ApiClient, repository: str, build_id: str, status: Any) -> None:
        self.client, self.repository, self.build_id = client, repository, build_id
        self.status = status
        self.phase = "waiting"
        self.reason: str | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def show(self) -> None:
        text = self.phase + (f": {self.reason}" if self.phase == "waiting" and self.reason
                             else "")
        if self.status is not None:
            self.status.update(f"[bold]{escape(text)}[/bold]")

    def _poll(self) -> None:
        while not self.stop.wait(WAIT_POLL_S) and self.phase == "waiting":
            try:
                build = self.client.get_build(self.repository, self.build_id)
            except CliError:
                continue
            reason = waiting_for(build)
            if reason != self.reason and self.phase == "waiting":
                self.reason = reason
                self.show()


def follow(
    client: ApiClient,
    repository: str,
    build_id: str,
    out: Console | None,
    reconnect: Reconnect,
    reason: str | None = None,
    held_error: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Print the log as it arrives to `out` (None: print nothing), with the phase on a
    spinner on a terminal; returns the final build. A server that goes away is waited
    for as `reconnect` says (ServerLost when it stays away). With `held_error`, an error
    entry is printed only once another entry follows it (the final phase aside); the
    log's last one is left in the list instead (the caller prints the build's error
    once, last)."""
    live = out is not None and out.is_terminal
    status_cm = out.status("[bold]waiting[/bold]") if live and out is not None else nullcontext()
    with status_cm as status:
        spinner = _Spinner(client, repository, build_id, status)
        spinner.reason = reason
        spinner.show()
        if live:
            spinner.thread.start()
        try:
            for event in client.stream(repository, build_id, reconnect=reconnect):
                if event.kind == "log":
                    entry = event.data
                    ends = entry.get("type") == "phase" and entry.get("message") in FINAL
                    if out is not None and held_error and not ends:
                        print_entry(out, held_error.pop())
                    if out is not None and held_error is not None and (
                            entry.get("type") == "error"):
                        held_error.append(entry)
                    elif out is not None:
                        print_entry(out, entry)
                    if entry.get("type") == "phase":
                        spinner.phase = str(entry.get("message"))
                        spinner.show()
                elif event.kind == "end":
                    return dict(event.data)
        finally:
            spinner.stop.set()
    return client.get_build(repository, build_id)


def reattach_command(repository: str, build_id: str, server: str | None = None,
                     context: str | None = None) -> str:
    """The command that follows the build again, with the --server/--context given."""
    where = (f" --server {server}" if server else "") + (f" --context {context}"
                                                         if context else "")
    return f"slipway logs {repository} {build_id} --follow{where}"


def stopped(repository: str, build_id: str, server: str | None = None,
            context: str | None = None) -> NoReturn:
    """Ctrl-C while following: the build goes on; how to find it again."""
    where = (f" --server {server}" if server else "") + (f" --context {context}"
                                                         if context else "")
    stderr_console().print(
        f"\nStopped following build {build_id}; it keeps running on the server.\n"
        f"Follow it again: {reattach_command(repository, build_id, server, context)}\n"
        f"Cancel it:       slipway cancel {repository} {build_id}{where}",
        markup=False,
    )
    raise typer.Exit(EXIT_INTERRUPTED)


def server_lost(exc: ServerLost, repository: str, build_id: str, server: str | None = None,
                context: str | None = None) -> NoReturn:
    """The server stayed away for the whole reconnect window: say so, and how to
    re-attach; exit 3, which a build's failure never gives."""
    err = stderr_console()
    err.print(f"[red]error:[/red] {escape(str(exc))}; build {escape(build_id)} may still be "
              "running there", soft_wrap=True)
    err.print(f"Re-attach when it is back: "
              f"{reattach_command(repository, build_id, server, context)}",
              markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_SERVER_LOST)

