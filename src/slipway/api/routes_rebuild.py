"""slipway's "build again": a new build with everything the old one was started with.

Done on the server because part of that never leaves it: build arguments and pull
credentials are stored with the build and not shown by the API, so a client could not
send them again."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from slipway.api import audit
from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.models import BuildOut, ErrorOut, RebuildRequest
from slipway.api.routes_builds import PREFIX, created, load_build
from slipway.manager.admission import Submission
from slipway.store.records import BuildRecord, NewBuild

router = APIRouter(prefix=PREFIX, tags=["builds"])

# what a new build takes from the old one as it is; the rest is the new build's own
_NOT_COPIED = {"manual_user", "display_name"}


def again(record: BuildRecord, user: str) -> NewBuild:
    copied = {f.name: getattr(record, f.name) for f in dataclasses.fields(NewBuild)
              if f.name not in _NOT_COPIED and hasattr(record, f.name)}
    return NewBuild(**copied, manual_user=user)


@router.post(
    "/{build_id}/rebuild",
    status_code=201,
    response_model=BuildOut,
    responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 429)},
)
async def rebuild(
    namespace: str,
    repository: str,
    build_id: str,
    request: Request,
    d: Annotated[ApiDeps, Depends(get_deps)],
    principal: Annotated[Principal, Depends(require(Role.WRITE))],
    body: RebuildRequest | None = None,
) -> JSONResponse:
    """**slipway**: start a new build of the same context, Dockerfile, tags, build
    arguments and pull credentials (`Location`: the new build's status); the optional
    body gives it a timeout or queue TTL of its own."""
    record = await load_build(d, namespace, repository, build_id)
    new = again(record, principal.name)
    if body is not None and body.options:
        new = dataclasses.replace(new, options={**(new.options or {}), **body.options})
    admitted = await d.admission.submit(Submission(new, again_of=build_id))
    await audit.record(request, principal.name, audit.BUILD_REBUILD, namespace=namespace,
                       target=admitted.record.id,
                       details={"repository": repository, "again_of": build_id})
    return await created(request, admitted)
