"""`slipway build`, `builds`, `logs`, `cancel`: the build API from the command line."""

from __future__ import annotations

import email.utils
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from slipway.cli.client import ApiClient, CliError, load_credentials
from slipway.cli.dockerignore import pack
from slipway.cli.output import fail

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FINAL = {"complete", "error", "internalerror", "cancelled", "expired"}

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

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
        name, _, tag = last.partition(":")
        tag = tag or "latest"
        parts = path.split("/") if path else []
        if len(parts) != 2 or not all(parts) or not name:
            raise CliError(
                f"-t {ref}: write HOST/NAMESPACE/REPO[:TAG], e.g. 127.0.0.1:5000/demo/hello:v1"
            )
        host, namespace = parts
        if not ("." in host or ":" in host or host == "localhost"):
            raise CliError(f"-t {ref}: {host!r} is not a registry host (e.g. "
                           "registry.example.com or 127.0.0.1:5000); write HOST/NAMESPACE/REPO")
        for what, value in (("namespace", namespace), ("repository", name)):
            if not NAME_RE.match(value):
                raise CliError(f"-t {ref}: {what} {value!r} must be lowercase letters and "
                               "digits separated by single '.', '_' or '-'")
        if not TAG_RE.match(tag):
            raise CliError(f"-t {ref}: {tag!r} is not a valid tag (letters, digits, '_', '.', "
                           "'-'; at most 128; not starting with '.' or '-')")
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
        if not ARG_RE.match(name):
            raise CliError(f"--build-arg {value}: write NAME=VALUE (NAME: letters, digits, _)")
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


def print_entry(entry: dict[str, Any]) -> None:
    kind = str(entry.get("type") or "")
    message = str(entry.get("message", ""))
    if kind == "phase":
        message = f"── {message}"
    # soft_wrap: log lines are printed whole (no re-wrapping, copy-pastable)
    console.print(message, style=STYLES.get(kind), markup=False, soft_wrap=True)


def follow(client: ApiClient, repository: str, build_id: str) -> dict[str, Any]:
    """Print the log as it arrives, with the phase on a spinner; returns the final build."""
    phase = "waiting"
    with console.status(f"[bold]{phase}[/bold]") as status:
        for event in client.stream(repository, build_id):
            if event.kind == "log":
                entry = event.data
                print_entry(entry)
                if entry.get("type") == "phase":
                    phase = str(entry.get("message"))
                    status.update(f"[bold]{escape(phase)}[/bold]")
            elif event.kind == "end":
                return dict(event.data)
    return client.get_build(repository, build_id)


def report(build: dict[str, Any], target: Target | None = None) -> None:
    phase = build.get("phase")
    if phase == "complete":
        digest = build.get("image_digest") or "(digest not reported)"
        if target is not None:
            for tag in build.get("tags", target.tags):
                console.print(f"[green]pushed[/green] {target.registry}/{target.repo_path}:{tag}")
        console.print(f"digest: {digest}")
        return
    reason = build.get("error") or f"the build ended in phase {phase}"
    fail(f"build {build.get('id')} {phase}: {reason}")


def _stopped(repository: str, build_id: str) -> NoReturn:
    errors.print(
        f"\nStopped following build {build_id}; it keeps running on the server.\n"
        f"Follow it again: slipway logs {repository} {build_id} --follow\n"
        f"Cancel it:       slipway cancel {repository} {build_id}"
    )
    raise typer.Exit(130)


def build(
    directory: Path = typer.Argument(..., metavar="DIR", help="Build context directory."),
    tag: list[str] = typer.Option([], "-t", "--tag", help="HOST/NAMESPACE/REPO[:TAG]; repeat."),
    file: str | None = typer.Option(
        None, "-f", "--file", help="Dockerfile (default DIR/Dockerfile or DIR/Containerfile)."
    ),
    build_arg: list[str] = typer.Option([], "--build-arg", help="NAME=VALUE; repeat."),
    target: str | None = typer.Option(None, "--target", help="Build stage to stop at."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Upload DIR, build it on a worker, follow the log, push the image."""
    build_id: str | None = None
    repo = ""
    try:
        dest = parse_targets(tag)
        repo = dest.repo_path
        args = parse_build_args(build_arg)
        if not directory.is_dir():
            raise CliError(f"{directory} is not a directory")
        dockerfile, outside = resolve_dockerfile(directory, file)
        with _client(server, token, context) as client, tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "context.tar.gz"
            extra = {dockerfile: outside} if outside else None
            count = pack(directory, archive, dockerfile=dockerfile, extra=extra)
            size = archive.stat().st_size
            console.print(f"Uploading context: {count} entries, {size / 1024:.1f} KiB")
            file_id = client.upload(archive, "application/gzip")
            body: dict[str, Any] = {
                "file_id": file_id,
                "docker_tags": dest.tags,
                "context": "",
                "dockerfile_path": dockerfile,
                "registry": dest.registry,
            }
            if args:
                body["build_args"] = args
            if target:
                body["target"] = target
            started = client.start_build(repo, body)
            build_id = str(started["id"])
            console.print(f"Build {build_id} queued for {dest.registry}/{repo}")
            final = follow(client, repo, build_id)
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if build_id is None:
            errors.print("\nInterrupted before the build was started.")
            raise typer.Exit(130) from None
        _stopped(repo, build_id)
    report(final, dest)


def builds(
    repository: str = typer.Argument(..., help="NAMESPACE/REPO"),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="How many (newest first)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """List a repository's builds, newest first."""
    try:
        repository = _repo_arg(repository)
        with _client(server, token, context) as client:
            items = client.list_builds(repository, limit)
    except CliError as exc:
        fail(str(exc))
    table = Table(
        Column("ID", no_wrap=True, min_width=36),
        Column("PHASE", no_wrap=True),
        "STARTED (UTC) / TAGS / DIGEST OR ERROR",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for b in items:
        digest = b.get("image_digest") or ""
        detail = [_short_date(b["started"]), ", ".join(b["tags"]),
                  digest[:19] if digest else b.get("error") or ""]
        table.add_row(b["id"], b["phase"], escape("\n".join(d for d in detail if d)))
    console.print(table)


def logs(
    repository: str = typer.Argument(..., help="NAMESPACE/REPO"),
    build_id: str = typer.Argument(..., help="Build id."),
    follow_log: bool = typer.Option(False, "--follow", "-f", help="Stream until it ends."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Print a build's log (with --follow, live until the build ends)."""
    try:
        repository = _repo_arg(repository)
        with _client(server, token, context) as client:
            if follow_log:
                final = follow(client, repository, build_id)
                console.print(f"build {build_id}: {final.get('phase')}")
                return
            for entry in client.logs(repository, build_id)["logs"]:
                print_entry(entry)
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
    console.print(f"build {build_id} cancelled")


def _short_date(rfc2822: str) -> str:
    try:
        return email.utils.parsedate_to_datetime(rfc2822).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return rfc2822


def _repo_arg(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 2 or not all(NAME_RE.match(p) for p in parts):
        raise CliError(f"{value!r}: write NAMESPACE/REPO, e.g. demo/hello")
    return value


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("build")(build)
    app.command("builds")(builds)
    app.command("logs")(logs)
    app.command("cancel")(cancel)

