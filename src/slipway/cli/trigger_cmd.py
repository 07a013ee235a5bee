"""`slipway trigger ...`: build triggers (docs/triggers.md) through the API: create, list,
show, update, disable/enable, delete, run now on a ref, and the recent deliveries.
Credentials are read from files (never from the command line, where `ps` shows them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from slipway.cli.errors import CliError
from slipway.cli.following import (
    ContextOpt,
    RepositoryArg,
    ServerOpt,
    TokenOpt,
    api_client,
    repository_arg,
)
from slipway.cli.output import fail, stdout_console

app = typer.Typer(help="Build triggers: build from git on a push, a schedule, or a moved "
                  "base image (docs/triggers.md).", no_args_is_help=True)

TriggerArg = typer.Argument(..., metavar="TRIGGER", help="The trigger's id or name.")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


def _path(repository: str, trigger: str | None = None) -> str:
    base = f"/api/v1/repository/{repository_arg(repository)}/trigger/"
    return base if trigger is None else f"{base}{trigger}"


def _find(client: Any, repository: str, trigger: str) -> str:
    """The id of the trigger named or identified by `trigger`."""
    for found in client.request("GET", _path(repository))["triggers"]:
        if trigger in (found["id"], found["name"]):
            return str(found["id"])
    raise CliError(f"no trigger {trigger!r} in {repository}; `slipway trigger list "
                   f"{repository}` shows them")


def _read_secret(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip("\n") if str(path) != "-" else input().strip()
    except OSError as exc:
        raise CliError(f"{what}: cannot read {path}: {exc.strerror}") from None


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v for value in values for v in value.split(",") if v]


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _show(trigger: dict[str, Any], as_json: bool) -> None:
    out = stdout_console()
    if as_json:
        out.print_json(json.dumps(trigger))
        return
    lines = [
        f"Trigger {trigger['name']} ({trigger['id']}), {trigger['kind']}, "
        f"{'enabled' if trigger['enabled'] else 'disabled'}",
        f"  git:         {trigger['git_url']}",
        f"  branches:    {', '.join(trigger['branches']) or '(none)'}",
        f"  tags:        {', '.join(trigger['tags']) or '(none)'}",
        f"  paths:       {', '.join(trigger['paths']) or '(any)'}",
        f"  dockerfile:  {trigger['context'] or '.'}/{trigger['dockerfile_path']}",
        f"  image tags:  {', '.join(trigger['tag_templates'])}",
        f"  credentials: {', '.join(trigger['credentials']) or '(none)'}",
        f"  webhook:     {trigger['webhook_url']}",
    ]
    if trigger.get("schedule"):
        lines.append(f"  schedule:    {trigger['schedule']['cron']} (UTC)")
    if trigger.get("watch_base_images"):
        lines.append("  rebuilds when a FROM image's digest moves")
    if trigger.get("webhook_secret"):
        lines.append(f"  webhook secret (shown once): {trigger['webhook_secret']}")
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except CliError as exc:
        fail(str(exc))


@app.command("create")
def create(
    repository: str = RepositoryArg,
    name: str = typer.Option(..., "--name", help="The trigger's name in the repository."),
    git_url: str = typer.Option(..., "--git", metavar="URL",
                                help="The git repository (HTTPS or SSH URL)."),
    kind: str = typer.Option("github", "--kind", help="github, gitlab or generic."),
    branch: list[str] = typer.Option(None, "--branch", metavar="GLOB",
                                     help="Branches to build (repeat; default all)."),
    tag: list[str] = typer.Option(None, "--tag", metavar="GLOB",
                                  help="Git tags to build (repeat; default all)."),
    path: list[str] = typer.Option(None, "--path", metavar="GLOB",
                                   help="Build only when a changed file matches one."),
    image_tag: list[str] = typer.Option(
        None, "--image-tag", metavar="TEMPLATE",
        help="Image tag templates: {branch}, {tag}, {sha}, {sha:7}, latest."),
    dockerfile: str | None = typer.Option(None, "--file", "-f", help="Dockerfile path, "
                                          "relative to the context."),
    context_dir: str | None = typer.Option(None, "--context-dir", help="Context directory "
                                           "in the repository."),
    default_branch: str | None = typer.Option(
        None, "--default-branch", metavar="BRANCH",
        help="The branch `latest` is pushed for (default main; a webhook names its own)."),
    build_arg: list[str] = typer.Option(None, "--build-arg", metavar="NAME=VALUE",
                                        help="A build argument (repeat)."),
    platform: list[str] = typer.Option(None, "--platform", metavar="OS/ARCH",
                                       help="Build for these platforms (repeat)."),
    schedule: str | None = typer.Option(None, "--schedule", metavar="CRON",
                                        help="Rebuild the default branch on this cron "
                                        "schedule (UTC)."),
    watch_base: bool = typer.Option(False, "--watch-base-images",
                                    help="Rebuild when a FROM image's digest moves."),
    ssh_key_file: Path | None = typer.Option(None, "--ssh-key-file", help="Deploy key "
                                             "(private) to clone with."),
    token_file: Path | None = typer.Option(None, "--token-file", help="HTTPS token to "
                                           "clone with (a file, or - for stdin)."),
    status_token_file: Path | None = typer.Option(None, "--status-token-file",
                                                  help="Token to post commit statuses."),
    status_api_url: str | None = typer.Option(
        None, "--status-api-url", metavar="URL",
        help="GitHub's or GitLab's API for commit statuses (default: from --git)."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Create a trigger; prints its webhook URL and secret (the secret only now)."""
    def action() -> None:
        args = dict(a.split("=", 1) for a in build_arg or [] if "=" in a)
        if len(args) != len(build_arg or []):
            raise CliError("--build-arg: write NAME=VALUE")
        body = _body(
            name=name, kind=kind, git_url=git_url, branches=_split(branch),
            tags=_split(tag), paths=_split(path), tag_templates=_split(image_tag),
            dockerfile_path=dockerfile, context=context_dir, default_branch=default_branch,
            build_args=args or None, platforms=_split(platform),
            schedule={"cron": schedule} if schedule else None,
            watch_base_images=watch_base or None, status_api_url=status_api_url,
            ssh_key=_read_secret(ssh_key_file, "--ssh-key-file"),
            token=_read_secret(token_file, "--token-file"),
            status_token=_read_secret(status_token_file, "--status-token-file"))
        with api_client(server, token, context) as client:
            _show(client.request("POST", _path(repository), json=body), as_json)
    _run(action)


@app.command("list")
def list_triggers(repository: str = RepositoryArg, as_json: bool = JsonOpt,
                  server: str | None = ServerOpt, token: str | None = TokenOpt,
                  context: str | None = ContextOpt) -> None:
    """The repository's triggers."""
    def action() -> None:
        with api_client(server, token, context) as client:
            found = client.request("GET", _path(repository))["triggers"]
        out = stdout_console()
        if as_json:
            out.print_json(json.dumps(found))
            return
        if not found:
            out.print(f"No trigger in {repository}.")
        for t in found:
            out.print(f"{t['id'][:8]}  {t['name']:<20} {t['kind']:<8} "
                      f"{'enabled' if t['enabled'] else 'disabled':<9} {t['git_url']}",
                      markup=False, highlight=False)
    _run(action)


@app.command("show")
def show(repository: str = RepositoryArg, trigger: str = TriggerArg,
         as_json: bool = JsonOpt, server: str | None = ServerOpt,
         token: str | None = TokenOpt, context: str | None = ContextOpt) -> None:
    """One trigger in full (credentials only by name)."""
    def action() -> None:
        with api_client(server, token, context) as client:
            found = _find(client, repository, trigger)
            _show(client.request("GET", _path(repository, found)), as_json)
    _run(action)


@app.command("update")
def update(
    repository: str = RepositoryArg, trigger: str = TriggerArg,
    set_: list[str] = typer.Option(
        None, "--set", metavar="FIELD=JSON",
        help="A field and its new value as JSON, e.g. --set 'branches=[\"main\"]' "
        "(repeat; docs/triggers.md lists the fields)."),
    rotate_secret: bool = typer.Option(False, "--rotate-webhook-secret",
                                       help="Make a new webhook secret (printed once)."),
    as_json: bool = JsonOpt, server: str | None = ServerOpt, token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Change fields of a trigger."""
    def action() -> None:
        body: dict[str, Any] = {}
        for item in set_ or []:
            field, eq, value = item.partition("=")
            if not eq:
                raise CliError(f"--set {item!r}: write FIELD=JSON")
            try:
                body[field] = json.loads(value)
            except json.JSONDecodeError:
                body[field] = value  # a plain string
        if rotate_secret:
            body["rotate_webhook_secret"] = True
        with api_client(server, token, context) as client:
            found = _find(client, repository, trigger)
            _show(client.request("PATCH", _path(repository, found), json=body), as_json)
    _run(action)


def _toggle(enabled: bool) -> Callable[..., None]:
    def command(repository: str = RepositoryArg, trigger: str = TriggerArg,
                server: str | None = ServerOpt, token: str | None = TokenOpt,
                context: str | None = ContextOpt) -> None:
        def action() -> None:
            with api_client(server, token, context) as client:
                found = _find(client, repository, trigger)
                client.request("PATCH", _path(repository, found), json={"enabled": enabled})
            stdout_console().print(f"Trigger {trigger} {'enabled' if enabled else 'disabled'}.")
        _run(action)
    command.__doc__ = "Enable the trigger." if enabled else \
        "Disable the trigger: webhooks and schedules build nothing until it is enabled."
    return command


app.command("disable")(_toggle(False))
app.command("enable")(_toggle(True))


@app.command("delete")
def delete(repository: str = RepositoryArg, trigger: str = TriggerArg,
           server: str | None = ServerOpt, token: str | None = TokenOpt,
           context: str | None = ContextOpt) -> None:
    """Delete the trigger, its credentials and deliveries (its builds stay)."""
    def action() -> None:
        with api_client(server, token, context) as client:
            found = _find(client, repository, trigger)
            client.request("DELETE", _path(repository, found))
        stdout_console().print(f"Trigger {trigger} deleted.")
    _run(action)


@app.command("run")
def run(repository: str = RepositoryArg, trigger: str = TriggerArg,
        ref: str = typer.Argument(..., metavar="REF", help="Branch, tag or full ref."),
        pull: bool = typer.Option(False, "--pull", help="Pull the base images anew."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Build every step anew."),
        server: str | None = ServerOpt, token: str | None = TokenOpt,
        context: str | None = ContextOpt) -> None:
    """Build the commit REF points to now; prints the build's id."""
    def action() -> None:
        with api_client(server, token, context) as client:
            found = _find(client, repository, trigger)
            build = client.request("POST", f"{_path(repository, found)}/run",
                                   json={"ref": ref, "pull": pull, "no_cache": no_cache})
        meta = build.get("trigger_metadata") or {}
        stdout_console().print(
            f"Build {build['id']} queued: {meta.get('ref')} at {str(meta.get('commit'))[:7]}, "
            f"tags {', '.join(build['tags'])}", markup=False, highlight=False)
    _run(action)


@app.command("deliveries")
def deliveries(repository: str = RepositoryArg, trigger: str = TriggerArg,
               as_json: bool = JsonOpt, server: str | None = ServerOpt,
               token: str | None = TokenOpt, context: str | None = ContextOpt) -> None:
    """The trigger's recent webhook deliveries and runs, newest first, with what each did."""
    def action() -> None:
        with api_client(server, token, context) as client:
            found = _find(client, repository, trigger)
            shown = client.request("GET", f"{_path(repository, found)}/deliveries")
        out = stdout_console()
        if as_json:
            out.print_json(json.dumps(shown["deliveries"]))
            return
        for d in shown["deliveries"]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(d["received"]))
            what = f" {d['ref']}" if d.get("ref") else ""
            out.print(f"{when}  {d['event']:<12} {d['outcome']:<9}{what}  {d['reason']}",
                      markup=False, highlight=False)
    _run(action)


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="trigger")
