"""`slipway build`: send a context, start a build, follow it to its end."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from slipway.cli.build_context import clone, is_git_url, parse_git, read_stdin
from slipway.cli.client import ApiClient, CliError
from slipway.cli.dockerignore import context_size, pack
from slipway.cli.following import (
    ContextOpt,
    ReconnectOpt,
    ServerOpt,
    TokenOpt,
    api_client,
    follow,
    print_entry,
    reconnect_policy,
    server_lost,
    stopped,
    waiting_for,
)
from slipway.cli.output import fail, megabytes, stderr_console, stdout_console, transfer
from slipway.cli.reconnect import EXIT_INTERRUPTED, ServerLost
from slipway.cli.secret_flags import parse_secrets
from slipway.domain.durations import InvalidDuration, parse_duration
from slipway.domain.loopback import is_loopback_registry
from slipway.domain.names import (
    InvalidName,
    check_build_arg_name,
    check_image_name,
    check_tag,
)
from slipway.domain.platforms import InvalidPlatform, normalize_platforms


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


def parse_timeout(value: str | None) -> int | None:
    """--timeout 20m: seconds (the server refuses more than its MACHINE_MAX_TIME)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise CliError(f"--timeout: {exc}") from None


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
    tag: list[str] = typer.Option(
        [], "-t", "--tag", metavar="IMAGE",
        help="Image to push, HOST/NAMESPACE/REPO[:TAG] (tag latest if none); repeat for "
        "more tags of the same repository."),
    file: str | None = typer.Option(
        None, "-f", "--file", metavar="FILE",
        help="Dockerfile (default CONTEXT/Dockerfile or Containerfile; with -, its path in "
        "the archive)."),
    build_arg: list[str] = typer.Option(
        [], "--build-arg", metavar="NAME=VALUE",
        help="Build argument (NAME alone: its value from the environment); repeat."),
    target: str | None = typer.Option(
        None, "--target", metavar="STAGE", help="Build stage to stop at."),
    label: list[str] = typer.Option(
        [], "--label", metavar="NAME=VALUE", help="Image label; repeat."),
    secret: list[str] = typer.Option(
        [], "--secret", metavar="SECRET",
        help="Build secret for RUN --mount=type=secret: id=NAME,src=FILE or "
        "id=NAME,env=VARIABLE; repeat. Never stored in the image or shown."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build every step anew."),
    no_sbom: bool = typer.Option(False, "--no-sbom",
                                 help="Attach no SBOM to the image (docs/signing.md)."),
    platform: list[str] = typer.Option(
        [], "--platform", metavar="OS/ARCH",
        help="OS/ARCH to build for, e.g. linux/amd64,linux/arm64 (comma-separated or "
        "repeated); several: one manifest list under every tag. Default: the executor's."),
    pull: bool = typer.Option(
        False, "--pull", help="Pull base images even when present; a failed pull fails."),
    timeout: str | None = typer.Option(
        None, "--timeout", metavar="DURATION",
        help="Stop the build if it runs longer than this, e.g. 20m or 1h30m (at most the "
        "server's MACHINE_MAX_TIME; default: the server's BUILD_TIMEOUTS for the "
        "namespace). A build stopped so fails and is not retried."),
    quiet: bool = typer.Option(
        False, "-q", "--quiet", help="Print only the image digest (errors on stderr)."),
    iidfile: Path | None = typer.Option(
        None, "--iidfile", metavar="FILE", help="Write the image digest to this file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the final build as JSON (the log goes to stderr)."),
    reconnect_timeout: str = ReconnectOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    context: str | None = ContextOpt,
) -> None:
    """Send CONTEXT, build it on a worker, follow the log, push the image.

    Exit status: 0 the build completed; 1 it failed (or the command did: bad input, a
    refusal); 2 bad usage; 3 the server went away for longer than --reconnect-timeout
    while the build ran (it may still run: re-attach with the command printed); 130
    interrupted (the build keeps running)."""
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
        timeout_seconds = parse_timeout(timeout)
        reconnect = reconnect_policy(reconnect_timeout, log_out)
        with api_client(server, token, context) as client, tempfile.TemporaryDirectory() as tmp:
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
            if no_sbom:
                body["sbom"] = False
            if pull:
                body["pull"] = True
            if platforms:
                body["platforms"] = platforms
            if timeout_seconds is not None:
                body["timeout"] = timeout_seconds
            started = client.start_build(repo, body)
            build_id = str(started["id"])
            reason = waiting_for(started)
            if log_out is not None:
                log_out.print(f"Build {build_id} queued for {dest.registry}/{repo}"
                              + (f"; waiting: {reason}" if reason else ""), markup=False)
            held: list[dict[str, Any]] = []
            final = follow(client, repo, build_id, log_out, reconnect, reason, held)
            if log_out is not None and held and held[0].get("message") != final.get("error"):
                print_entry(log_out, held[0])  # not the error the last line shows
            if quiet and final.get("phase") != "complete":
                _tail_on_failure(client, repo, build_id)
    except ServerLost as exc:
        assert build_id is not None  # only following a started build reconnects
        server_lost(exc, repo, build_id, server, context)
    except CliError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if build_id is None:
            stderr_console().print("\nInterrupted before the build was started.")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        stopped(repo, build_id, server, context)
    _report(final, dest, out, quiet=quiet, as_json=as_json, iidfile=iidfile)


def register(app: typer.Typer) -> None:
    """Add this module's command to the main app."""
    app.command("build")(build)
