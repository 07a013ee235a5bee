"""Quay's repository build routes: start, list, show, logs, cancel."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from slipway.api import audit
from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import bad_request, not_found
from slipway.api.models import (
    BuildList,
    BuildOut,
    BuildRequest,
    ErrorOut,
    LogsOut,
)
from slipway.api.serialize import EXPIRED, build_view
from slipway.domain.phases import Phase
from slipway.manager.admission import (
    Admitted,
    Submission,
    check_repository_names,
    waiting_reasons,
)
from slipway.manager.control import CancelOutcome
from slipway.store.records import BuildRecord, NewBuild

PREFIX = "/api/v1/repository/{namespace}/{repository}/build"
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404)
}

router = APIRouter(prefix=PREFIX, tags=["builds"], responses=ERRORS)

Namespace = Annotated[str, Path(description="namespace (organization or user)")]
RepoName = Annotated[str, Path(description="repository name")]
Deps = Annotated[ApiDeps, Depends(get_deps)]


def check_names(namespace: str, repository: str) -> None:
    check_repository_names(namespace, repository)  # Refused: a 400 (api/errors.py)


async def load_build(d: ApiDeps, namespace: str, repository: str, build_id: str) -> BuildRecord:
    check_names(namespace, repository)
    record = await d.store.builds.get(build_id) if len(build_id) <= 64 else None
    if record is None or (record.namespace, record.repository) != (namespace, repository):
        raise not_found(f"no build {build_id!r} in repository {namespace}/{repository}")
    return record


async def views(d: ApiDeps, records: list[BuildRecord]) -> list[BuildOut]:
    """The build objects, each waiting one with why it waits (status.waiting_for)."""
    waiting = [r.id for r in records if r.phase is Phase.WAITING]
    reasons = await waiting_reasons(d.store, d.config, waiting)
    return [build_view(r, reasons.get(r.id)) for r in records]


async def created(request: Request, admitted: Admitted) -> JSONResponse:
    """201 with the new build and its status URL in `Location`."""
    record = admitted.record
    location = str(request.url_for("build_status", namespace=record.namespace,
                                   repository=record.repository, build_id=record.id))
    return JSONResponse(
        build_view(record, admitted.waiting).model_dump(mode="json"),
        status_code=201,
        headers={"Location": location},
    )


def phase_filter(phases: list[str] | None) -> list[Phase] | None:
    """The API's phase names (`expired` is an `internalerror` with no retries left)."""
    if not phases:
        return None
    names = {p.value for p in Phase} | {EXPIRED}
    chosen: list[Phase] = []
    for name in phases:
        for part in name.split(","):
            if part not in names:
                raise bad_request(
                    f"phase: {part!r} is not a phase; use one of {', '.join(sorted(names))}"
                )
            chosen.append(Phase.INTERNAL_ERROR if part == EXPIRED else Phase(part))
    return chosen


# a log entry's number is a 32-bit column on PostgreSQL; a larger start names no entry
# and would not fit the query (found by schemathesis: a 500)
MAX_LOG_INDEX = 2**31 - 1

ID_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


def checked_id_prefix(value: str, since: float | None, phases: list[str] | None) -> str:
    """The `id_prefix` of a build listing, lower-cased; a 400 saying what is wrong."""
    prefix = value.strip().lower()
    if not ID_PREFIX.match(prefix):
        raise bad_request(
            f"id_prefix: {value!r} is not the start of a build id; give 4 to 36 of its "
            "characters (0-9, a-f and -), e.g. the 8 the web UI shows"
        )
    if since is not None or phases:
        raise bad_request("id_prefix: not with since or phase (it looks a build up by its id)")
    return prefix


@router.post("/", status_code=201, response_model=BuildOut, responses={429: {"model": ErrorOut}})
async def start_build(
    namespace: Namespace,
    repository: RepoName,
    body: BuildRequest,
    request: Request,
    d: Deps,
    principal: Annotated[Principal, Depends(require(Role.WRITE))],
) -> JSONResponse:
    """Start a build of an uploaded context (`file_id`) or of an archive URL."""
    context, dockerfile = body.resolved_paths
    creds = body.pull_credentials
    new = NewBuild(
        namespace=namespace,
        repository=repository,
        tags=body.docker_tags or ["latest"],
        registry=body.registry or d.config.SERVER_HOSTNAME,
        subdirectory=body.subdirectory or "",
        dockerfile_path=dockerfile,
        context=context,
        manual_user=principal.name,
        resource_key=body.file_id,
        archive_url=body.archive_url,
        pull_robot=body.pull_robot,
        pull_credentials=(
            {"username": creds.username, "password": creds.password.get_secret_value()}
            if creds
            else None
        ),
        build_args=body.build_args or {},
        target=body.target,
        options=body.options,
    )
    admitted = await d.admission.submit(Submission(new, secrets=body.secret_values))
    await audit.record(request, principal.name, audit.BUILD_START, namespace=namespace,
                       target=admitted.record.id, details={"repository": repository})
    return await created(request, admitted)


@router.get("/", response_model=BuildList)
async def list_builds(
    namespace: Namespace,
    repository: RepoName,
    d: Deps,
    _p: Annotated[Principal, Depends(require(Role.READ))],
    limit: Annotated[int, Query(ge=1, le=100, description="most builds returned")] = 5,
    since: Annotated[float | None, Query(description="only builds started after (UNIX time)")]
    = None,
    phase: Annotated[list[str] | None, Query(
        description="slipway: only builds in these phases (repeat, or comma-separated)")] = None,
    id_prefix: Annotated[str | None, Query(
        description="slipway: only builds whose id starts with this (4 to 36 characters "
        "of an id, e.g. the 8 the UI shows); not with since or phase")] = None,
) -> BuildList:
    """The repository's builds, newest first."""
    check_names(namespace, repository)
    if id_prefix is not None:
        prefix = checked_id_prefix(id_prefix, since, phase)
        found = await d.store.builds.find_by_id_prefix(namespace, repository, prefix,
                                                        limit=limit)
        return BuildList(builds=await views(d, found))
    records = await d.store.builds.list_for_repository(
        namespace, repository, limit=limit, since=since, phases=phase_filter(phase)
    )
    return BuildList(builds=await views(d, records))


@router.get("/{build_id}", response_model=BuildOut)
@router.get("/{build_id}/status", response_model=BuildOut, name="build_status")
async def get_build(
    namespace: Namespace,
    repository: RepoName,
    build_id: str,
    d: Deps,
    _p: Annotated[Principal, Depends(require(Role.READ))],
) -> BuildOut:
    [view] = await views(d, [await load_build(d, namespace, repository, build_id)])
    return view


@router.get("/{build_id}/logs", response_model=LogsOut)
async def get_logs(
    namespace: Namespace,
    repository: RepoName,
    build_id: str,
    d: Deps,
    _p: Annotated[Principal, Depends(require(Role.READ))],
    start: Annotated[int, Query(ge=0, le=MAX_LOG_INDEX,
                                description="index of the first entry")] = 0,
    limit: Annotated[int | None, Query(ge=0, le=MAX_LOG_INDEX,
                                       description="at most this many entries (slipway; "
                                       "default: all from `start`)")] = None,
) -> JSONResponse:
    """Log entries from `start` (entries are numbered from 0 and never rewritten); `total`
    is the log's length, so a page of the log also says how long it is."""
    await load_build(d, namespace, repository, build_id)
    total, entries = await d.store.logs.read(build_id, start, limit)
    body = {"start": start, "total": total, "logs": [e.as_api() for e in entries]}
    return JSONResponse(body)


@router.delete("/{build_id}", status_code=201)
async def cancel_build(
    namespace: Namespace,
    repository: RepoName,
    build_id: str,
    request: Request,
    d: Deps,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> JSONResponse:
    """Cancel a build that has not started pushing."""
    await load_build(d, namespace, repository, build_id)
    outcome = await d.control.cancel(build_id)
    if outcome is CancelOutcome.NOT_FOUND:
        raise not_found(f"no build {build_id!r} in repository {namespace}/{repository}")
    if outcome is CancelOutcome.TOO_LATE:
        raise bad_request("Build is currently running or has finished")
    await audit.record(request, principal.name, audit.BUILD_CANCEL, namespace=namespace,
                       target=build_id, details={"repository": repository})
    return JSONResponse("Okay", status_code=201)
