"""Quay's file drop routes: POST for an upload URL, PUT the context there; workers
download it with the signed link of `filedrop.context_url`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import ApiError, insufficient_storage, not_found
from slipway.api.filedrop import UPLOAD_LIFETIME, UPLOAD_MARK, verify_link
from slipway.api.models import ErrorOut, FileDropOut, FileDropRequest
from slipway.api.uploads import DiskFull, TooLarge, create_upload, get_upload, receive
from slipway.store.errors import RETRY_AFTER_S
from slipway.tokens.jwt import TokenType

router = APIRouter(prefix="/api/v1/filedrop", tags=["filedrop"])
Deps = Annotated[ApiDeps, Depends(get_deps)]


@router.post("/", response_model=FileDropOut, responses={401: {"model": ErrorOut}})
async def filedrop(
    body: FileDropRequest,
    request: Request,
    d: Deps,
    _p: Annotated[Principal, Depends(require(Role.WRITE))],
) -> FileDropOut:
    """Reserve an upload: PUT the archive (tar, tar.gz, zip) or a Dockerfile to `url`."""
    file_id = await create_upload(d.store, body.mimeType, None)
    token = d.tokens.mint(TokenType.CONTEXT, UPLOAD_MARK, file_id, UPLOAD_LIFETIME)
    url = request.url_for("upload_file", file_id=file_id).include_query_params(token=token)
    return FileDropOut(file_id=file_id, url=str(url))


@router.put(
    "/{file_id}",
    name="upload_file",
    status_code=200,
    responses={code: {"model": ErrorOut} for code in (403, 404, 409, 413, 503, 507)},
)
async def upload_file(
    file_id: str,
    request: Request,
    d: Deps,
    token: Annotated[str, Query(description="from the url of POST /filedrop/")],
) -> JSONResponse:
    """The upload itself; the body is streamed to disk, refused past BUILD_UPLOAD_MAX_BYTES
    (413) or when DATA_DIR is full (507, nothing of it kept)."""
    await verify_link(d.tokens, token, file_id, upload=True)
    upload = await get_upload(d.store, file_id)
    if upload is None:
        raise not_found(f"no file drop {file_id!r}")
    if upload.complete:
        raise ApiError(409, f"file {file_id} was already uploaded; POST /filedrop/ again",
                       "conflict")
    limit = d.config.BUILD_UPLOAD_MAX_BYTES
    too_large = ApiError(
        413,
        f"the upload is larger than the limit of {limit} bytes (BUILD_UPLOAD_MAX_BYTES); "
        "shrink the context, e.g. with a .dockerignore",
        "too_large",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    try:
        size = await receive(d.store, d.config.DATA_DIR, file_id, request.stream(), limit)
    except TooLarge:
        raise too_large from None
    except DiskFull as exc:
        raise insufficient_storage(str(exc), RETRY_AFTER_S) from None
    return JSONResponse({"file_id": file_id, "size": size})


@router.get(
    "/{file_id}/content",
    response_class=FileResponse,
    responses={code: {"model": ErrorOut} for code in (403, 404)},
)
async def download_file(
    file_id: str,
    d: Deps,
    token: Annotated[str, Query(description="signed link from context_url")],
) -> FileResponse:
    """An uploaded context, for the build worker (the signed token is the credential)."""
    await verify_link(d.tokens, token, file_id, upload=False)
    upload = await get_upload(d.store, file_id)
    if upload is None or upload.path is None or not upload.complete:
        raise not_found(f"no uploaded file {file_id!r}")
    return FileResponse(upload.path, media_type=upload.mime_type)
