"""`slipway build`, `builds`, `logs`, `cancel`: the build API from the command line."""

from __future__ import annotations

import email.utils
import json
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from slipway.cli.build_context import clone, is_git_url, parse_git, read_stdin
from slipway.cli.client import ApiClient, CliError, load_credentials
from slipway.cli.dockerignore import context_size, pack
from slipway.cli.output import fail, megabytes, stderr_console, stdout_console, transfer
from slipway.cli.secret_flags import parse_secrets
from slipway.domain.loopback import is_loopback_registry
from slipway.domain.names import (
    InvalidName,
    check_build_arg_name,
    check_image_name,
    check_namespace,
    check_repository,
    check_tag,
)
from slipway.domain.platforms import InvalidPlatform, normalize_platforms

FINAL = {"complete", "error", "internalerror", "cancelled", "expired"}

ServerOpt = typer.Option(
    None, "--server", help="API URL (default: SLIPWAY_URL, else the context's)."
)
TokenOpt = typer.Option(
    None, "--token", help="API token (default: SLIPWAY_TOKEN, else the context's)."
)
ContextOpt = typer.Option(
    None, "--context", help="CLI context (default: SLIPWAY_CONTEXT, else the current one)."
)


@dataclass(frozen=True)
class Target:
    registry: str
    namespace: str
    repository: str
    tags: list[str]

    @property
    def repo_path(self) -> str:
        return f"{self.namespace}/{self.repository}"


def parse_targets(refs: list[str]) -> Target:
    """-t HOST/NS/REPO[:TAG] values, which must all name the same repository."""
    if not refs:
        raise CliError("give at least one -t HOST/NAMESPACE/REPO[:TAG]")
    seen: set[tuple[str, str, str]] = set()
    tags: list[str] = []
    for ref in refs:
        if "@" in ref:
            raise CliError(f"-t {ref}: a digest cannot be a build target; use a tag")
        path, _, last = ref.rpartition("/")
        name, colon, tag = last.partition(":")
        tag = tag or ("" if colon else "latest")
        parts = path.split("/") if path else []
        if len(parts) != 2 or not all(parts) or not name:
            raise CliError(
                f"-t {ref}: write HOST/NAMESPACE/REPO[:TAG], e.g. 127.0.0.1:5000/demo/hello:v1"
            )
        host, namespace = parts
        try:
            check_image_name(host, namespace, name)
            check_tag(tag)
        except InvalidName as exc:
            fix = "; write HOST/NAMESPACE/REPO" if exc.field == "registry" else ""
            raise CliError(f"-t {ref}: {exc}{fix}") from None
        seen.add((host, namespace, name))
        if tag not in tags:
            tags.append(tag)
    if len(seen) > 1:
        names = ", ".join(sorted("/".join(s) for s in seen))
        raise CliError(f"all -t must name the same repository (one build pushes to one "
                       f"repository), got: {names}; run one build per repository")
    host, namespace, name = seen.pop()
    return Target(host, namespace, name, tags)


def parse_build_args(values: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for value in values:
        name, eq, arg = value.partition("=")
        try:
            check_build_arg_name(name)
        except InvalidName as exc:
            raise CliError(f"--build-arg {value}: {exc}; write NAME=VALUE") from None
        if not eq:  # like docker: take the value from the environment
            if name not in os.environ:
                raise CliError(f"--build-arg {name}: no value given and ${name} is not set")
            arg = os.environ[name]
        args[name] = arg
    return args


def resolve_dockerfile(context: Path, dockerfile: str | None) -> tuple[str, Path | None]:
    """(path inside the archive, file to add from outside the context or None)."""
    if dockerfile is None:
        for name in ("Dockerfile", "Containerfile"):
            if (context / name).is_file():
                return name, None
        raise CliError(f"no Dockerfile in {context}; add one or name it with -f")
    path = Path(dockerfile)
    if not path.is_file():
        raise CliError(f"-f {dockerfile}: no such file")
    try:
        return path.resolve().relative_to(context.resolve()).as_posix(), None
    except ValueError:
        # outside the context, as docker allows: send it along under a private name
        return f".slipway-dockerfile-{uuid.uuid4().hex[:8]}", path


@contextmanager
def _client(
    server: str | None, token: str | None, context: str | None = None
) -> Iterator[ApiClient]:
    with ApiClient(load_credentials(server, token, context)) as client:
        yield client


STYLES = {"phase": "bold magenta", "command": "bold cyan", "error": "red"}
WAIT_POLL_S = 3.0


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
    reason: str | None = None,
    held_error: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Print the log as it arrives to `out` (None: print nothing), with the phase on a
    spinner on a terminal; returns the final build. With `held_error`, an error entry is
    printed only once another entry follows it (the final phase aside); the log's last one
    is left in the list instead (the caller prints the build's error once, last)."""
    live = out is not None and out.is_terminal
    status_cm = out.status("[bold]waiting[/bold]") if live and out is not None else nullcontext()
    with status_cm as status:
        spinner = _Spinner(client, repository, build_id, status)
        spinner.reason = reason
        spinner.show()
        if live:
            spinner.thread.start()
        try:
            for event in client.stream(repository, build_id):
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


def _stopped(repository: str, build_id: str) -> NoReturn:
    stderr_console().print(
        f"\nStopped following build {build_id}; it keeps running on the server.\n"
        f"Follow it again: slipway logs {repository} {build_id} --follow\n"
        f"Cancel it:       slipway cancel {repository} {build_id}",
        markup=False,
    )
    raise typer.Exit(130)


def parse_labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        name, eq, label = value.partition("=")
        if not eq or not name or any(c.isspace() for c in name):
            raise CliError(f"--label {value}: write NAME=VALUE (NAME without spaces), e.g. "
                           "--label org.opencontainers.image.source=https://example.com/app")
        labels[name] = label
    return labels


def parse_platforms(values: list[str]) -> list[str]:
    """--platform A,B and --platform A --platform B alike (docs/multi-arch.md)."""
    given = [p for value in values for p in value.split(",") if p.strip()]
    try:
        return normalize_platforms(given)
    except InvalidPlatform as exc:
        raise CliError(f"--platform: {exc}") from None


def check_with_server(client: ApiClient, dest: Target) -> None:
    """Refuse what the server would refuse, before the context is sent."""
    info = client.info()
    if info is None:  # an older server: it checks when the build is started
        return
    if not info.get("build_support", True):
        raise CliError(f"{client.server} refuses builds (FEATURE_BUILD_SUPPORT is false)")
    registries = list(info.get("registries") or [])
    loopback = bool(info.get("loopback_registries")) and is_loopback_registry(dest.registry)
    if registries and dest.registry not in registries and not loopback:
        raise CliError(
            f"registry {dest.registry!r} is not a registry {client.server} pushes to; "
            f"allowed: {', '.join(registries)} (an administrator adds others to "
            "ALLOWED_REGISTRIES); nothing was uploaded"
        )
    scopes = dict(info.get("token", {}).get("scopes") or {})
    roles = [scopes.get(dest.namespace), scopes.get("*")]
    if not any(role in ("write", "admin") for role in roles):
        raise CliError(
            f"the token ({info.get('token', {}).get('name')!r}) may not build in namespace "
            f"{dest.namespace!r} (it needs write); nothing was uploaded"
        )


@dataclass
class Archive:
    path: Path
    mime_type: str
    dockerfile: str  # path in the archive
    entries: int | None  # files packed here; None for an archive from stdin


def prepare_context(source: str, file: str | None, tmp: Path, out: Console | None) -> Archive:
    """The context as an archive in `tmp`: packed from a directory or a fresh clone, or
    read from standard input (`-`)."""
    archive = tmp / "context.tar.gz"
    if source == "-":
        dockerfile = file or "Dockerfile"
        with transfer(out, "Reading the context from standard input", 0) as progress:
            mime = read_stdin(sys.stdin.buffer, archive, dockerfile, progress)
        return Archive(archive, mime, dockerfile, None)
    if is_git_url(source):
        git = parse_git(source)
        if out is not None:
            out.print(f"Cloning {git.url}" + (f" at {git.ref}" if git.ref else ""), markup=False)
        directory = clone(git, tmp / "clone")
    else:
        directory = Path(source)
        if not directory.is_dir():
            raise CliError(f"{source} is not a directory (nor a git URL, nor - for standard "
                           "input)")
    dockerfile, outside = resolve_dockerfile(directory, file)
    extra = {dockerfile: outside} if outside else None
    with transfer(out, "Packing the context", context_size(directory)) as progress:
        count = pack(directory, archive, dockerfile=dockerfile, extra=extra, progress=progress)
    return Archive(archive, "application/gzip", dockerfile, count)


def _report(
    final: dict[str, Any], dest: Target, out: Console, *, quiet: bool, as_json: bool,
    iidfile: Path | None,
) -> None:
    phase = final.get("phase")
    digest = final.get("image_digest")
    if phase == "complete" and digest and iidfile is not None:
        iidfile.write_text(str(digest))
    if as_json:
        typer.echo(json.dumps(final))
    elif quiet:
        if phase == "complete" and digest:
            typer.echo(digest)
    elif phase == "complete":
        for tag in final.get("tags", dest.tags):
            out.print(f"[green]pushed[/green] {escape(dest.registry)}/{dest.repo_path}:{tag}")
        out.print(f"digest: {digest or '(digest not reported)'}", markup=False)
    if phase != "complete":
        reason = final.get("error") or f"the build ended in phase {phase}"
        fail(f"build {final.get('id')} {phase}: {reason}")
    if not digest and (quiet or iidfile is not None):
        fail(f"build {final.get('id')} completed but the worker reported no digest")


def _tail_on_failure(client: ApiClient, repository: str, build_id: str, lines: int = 20) -> None:
    """-q prints no log; when the build fails its end is worth seeing."""
    try:
        entries = client.logs(repository, build_id)["logs"][-lines:]
    except CliError:
        return
    err = stderr_console()
    for entry in entries:
        print_entry(err, entry)


def build(
    source: str = typer.Argument(
        ..., metavar="CONTEXT",
        help="Build context: a directory, a git URL (URL#REF:SUBDIR, cloned here), or - "
        "(a tar archive or a Dockerfile on standard input)."),
    tag: list[str] = typer.Option([], "-t", "--tag", help="HOST/NAMESPACE/REPO[:TAG]; repeat."),
    file: str | None = typer.Option(
        None, "-f", "--file",
        help="Dockerfile (default CONTEXT/Dockerfile or Containerfile; with -, its path in "
        "the archive)."),
    build_arg: list[str] = typer.Option([], "--build-arg", help="NAME=VALUE; repeat."),
    target: str | None = typer.Option(None, "--target", help="Build stage to stop at."),
    label: list[str] = typer.Option([], "--label", help="Image label NAME=VALUE; repeat."),
    secret: list[str] = typer.Option(
        [], "--secret",
        help="Build secret for RUN --mount=type=secret: id=NAME,src=FILE or "
        "id=NAME,env=VARIABLE; repeat. Never stored in the image or shown."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build every step anew."),
    platform: list[str] = typer.Option(
        [], "--platform",
        help="OS/ARCH to build for, e.g. linux/amd64,linux/arm64 (comma-separated or "
        "repeated); several: one manifest list under every tag. Default: the executor's."),
    pull: bool = typer.Option(
        False, "--pull", help="Pull base images even when present; a failed pull fails."),
    quiet: bool = typer.Option(
        False, "-q", "--quiet", help="Print only the image digest (errors on stderr)."),
    iidfile: Path | None = typer.Option(
        None, "--iidfile", help="Write the image digest to this file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the final build as JSON (the log goes to stderr)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Send CONTEXT, build it on a worker, follow the log, push the image."""
    build_id: str | None = None
    repo = ""
    out = stderr_console() if as_json else stdout_console()
    log_out: Console | None = None if quiet else out
    try:
        dest = parse_targets(tag)
        repo = dest.repo_path
        args = parse_build_args(build_arg)
        labels = parse_labels(label)
        secrets = parse_secrets(secret)
        platforms = parse_platforms(platform)
        with _client(server, token, context) as client, tempfile.TemporaryDirectory() as tmp:
            check_with_server(client, dest)
            archive = prepare_context(source, file, Path(tmp), log_out)
            size = archive.path.stat().st_size
            what = f"{archive.entries} files, " if archive.entries is not None else ""
            with transfer(log_out, f"Uploading the context ({what}{megabytes(size)})",
                          size) as progress:
                file_id = client.upload(archive.path, archive.mime_type, progress)
            body: dict[str, Any] = {
                "file_id": file_id,
                "docker_tags": dest.tags,
                "context": "",
                "dockerfile_path": archive.dockerfile,
                "registry": dest.registry,
            }
            if args:
                body["build_args"] = args
            if target:
                body["target"] = target
            if labels:
                body["labels"] = labels
            if secrets:
                body["secrets"] = secrets
            if no_cache:
                body["no_cache"] = True
            if pull:
                body["pull"] = True
            if platforms:
                body["platforms"] = platforms
            started = client.start_build(repo, body)
            build_id = str(started["id"])
            reason = waiting_for(started)
            if log_out is not None:
                log_out.print(f"Build {build_id} queued for {dest.registry}/{repo}"
                              + (f"; waiting: {reason}" if reason else ""), markup=False)
            held: list[dict[str, Any]] = []
            final = follow(client, repo, build_id, log_out, reason, held)
            if log_out is not None and held and held[0].get("message") != final.get("error"):
                print_entry(log_out, held[0])  # not the error the last line shows
            if quiet and final.get("phase") != "complete":
                _tail_on_failure(client, repo, build_id)
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if build_id is None:
            stderr_console().print("\nInterrupted before the build was started.")
            raise typer.Exit(130) from None
        _stopped(repo, build_id)
    _report(final, dest, out, quiet=quiet, as_json=as_json, iidfile=iidfile)


def builds(
    repository: str = typer.Argument(..., help="NAMESPACE/REPO"),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="How many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the builds as a JSON array."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """List a repository's builds, newest first."""
    try:
        repository = _repo_arg(repository)
        with _client(server, token, context) as client:
            items = client.list_builds(repository, limit)
            if not items:
                raise CliError(
                    f"no builds in repository {repository} on {client.server}: it is unknown "
                    "there (slipway knows a repository once a build was started in it); "
                    "check the name"
                )
    except CliError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(items))
        return
    table = Table(
        Column("ID", no_wrap=True),
        Column("PHASE", no_wrap=True),
        Column("STARTED (UTC)", no_wrap=True),
        "TAGS",
        "DIGEST, ERROR OR WHY IT WAITS",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    for b in items:
        digest = b.get("image_digest") or ""
        detail = digest[:19] if digest else b.get("error") or waiting_for(b) or ""
        table.add_row(b["id"], b["phase"], _short_date(b["started"]), ", ".join(b["tags"]),
                      escape(detail))
    stdout_console().print(table)


def logs(
    repository: str = typer.Argument(..., help="NAMESPACE/REPO"),
    build_id: str = typer.Argument(..., help="Build id."),
    follow_log: bool = typer.Option(False, "--follow", "-f", help="Stream until it ends."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per log entry and line (JSON Lines)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Print a build's log (with --follow, live until the build ends)."""
    out = stdout_console()
    try:
        repository = _repo_arg(repository)
        with _client(server, token, context) as client:
            if as_json:
                entries = (e.data for e in client.stream(repository, build_id)
                           if e.kind == "log") if follow_log \
                    else iter(client.logs(repository, build_id)["logs"])
                for entry in entries:
                    typer.echo(json.dumps(entry))
                return
            if follow_log:
                final = follow(client, repository, build_id, out)
                out.print(f"build {build_id}: {final.get('phase')}", markup=False)
                return
            for entry in client.logs(repository, build_id)["logs"]:
                print_entry(out, entry)
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        _stopped(repository, build_id)


def cancel(
    repository: str = typer.Argument(..., help="NAMESPACE/REPO"),
    build_id: str = typer.Argument(..., help="Build id."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Cancel a build that has not started pushing."""
    try:
        repository = _repo_arg(repository)
        with _client(server, token, context) as client:
            client.cancel(repository, build_id)
    except CliError as exc:
        fail(str(exc))
    stdout_console().print(f"build {build_id} cancelled", markup=False)


def _short_date(rfc2822: str) -> str:
    try:
        return email.utils.parsedate_to_datetime(rfc2822).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return rfc2822


def _repo_arg(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 2:
        raise CliError(f"{value!r}: write NAMESPACE/REPO, e.g. demo/hello")
    try:
        check_namespace(parts[0])
        check_repository(parts[1])
    except InvalidName as exc:
        raise CliError(f"{value!r}: {exc}") from None
    return value


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("build")(build)
    app.command("builds")(builds)
    app.command("logs")(logs)
    app.command("cancel")(cancel)
