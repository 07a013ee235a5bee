"""slipway's "build again": a new build with everything the old one was started with.

Done on the server because part of that never leaves it: build arguments and pull
credentials are stored with the build and not shown by the API, so a client could not
send them again."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import bad_request
from slipway.api.models import BuildOut, ErrorOut
from slipway.api.routes_builds import (
    PREFIX,
    _check_registry,
    check_builds_enabled,
    check_queue_room,
    created,
    load_build,
)
from slipway.api.uploads import get_upload
from slipway.build_secrets import InvalidSecret, secrets_for_build
from slipway.metrics import BUILDS_SUBMITTED
from slipway.store.builds import BuildRecord, NewBuild

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
) -> JSONResponse:
    """**slipway**: start a new build of the same context, Dockerfile, tags, build
    arguments and pull credentials (`Location`: the new build's status)."""
    record = await load_build(d, namespace, repository, build_id)
    check_builds_enabled(d)
    _check_registry(d, record.registry)
    if record.resource_key and not record.archive_url:
        upload = await get_upload(d.store, record.resource_key)
        if upload is None or not upload.complete:
            raise bad_request(
                f"the uploaded context of build {build_id} is no longer on this server; "
                "start a new build with the context"
            )
    # submitted secrets end with their build; the configured ones are read anew
    try:
        secrets = secrets_for_build(d.config.BUILD_SECRETS, namespace, repository, None)
    except InvalidSecret as exc:  # too many, once the namespace's and repository's merge
        raise bad_request(f"{exc}; an administrator fixes it in BUILD_SECRETS") from None
    gone = sorted(set(record.options.get("secrets") or ()) - set(secrets))
    if gone:
        raise bad_request(
            f"build {build_id} was given secrets {', '.join(gone)} when it was submitted; "
            "a build's secrets are deleted when it ends, so start a new build with them"
        )
    await check_queue_room(d, namespace)
    build = again(record, principal.name)
    options = {k: v for k, v in build.options.items() if k != "secrets"}
    if secrets:
        options["secrets"] = sorted(secrets)
    new = await d.control.submit(dataclasses.replace(build, options=options), secrets)
    BUILDS_SUBMITTED.labels(namespace).inc()
    return await created(request, d, new)
