"""Quay-shaped error responses: `{"status", "error_message", "error_type", "title", "detail"}`.

FastAPI answers invalid input with 422 and a list of pydantic errors; Quay's clients expect
400 with one readable message, so validation errors are turned into that here.

A database that does not answer is 503 on every route, with Retry-After, and a full one
507 (store/errors.py says which failures those are; store/outage.py logs each episode
once): a client tries again later, rather than seeing a 500 and a traceback per request.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from slipway.domain.refusals import Refusal, Refused
from slipway.store.errors import ArchiveUnavailable, StoreFull, StoreUnavailable

# how long a client waits before it asks again for a log the archive could not give
ARCHIVE_RETRY_AFTER_S = 30

# the status of each admission refusal (manager/admission.py)
REFUSAL_STATUS = {Refusal.INVALID: 400, Refusal.DISABLED: 403, Refusal.QUEUE_FULL: 429}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        error_type: str = "invalid_request",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.headers = headers


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request")


def not_found(message: str) -> ApiError:
    return ApiError(404, message, "not_found")


def insufficient_storage(message: str, retry_after: int) -> ApiError:
    """507: a write found no room (DATA_DIR or the database full); reads still work."""
    return ApiError(507, message, "insufficient_storage", {"Retry-After": str(retry_after)})


def store_unavailable(exc: StoreUnavailable) -> ApiError:
    if isinstance(exc, StoreFull):
        return insufficient_storage(exc.message, exc.retry_after)
    return ApiError(503, exc.message, "database_unavailable",
                    {"Retry-After": str(exc.retry_after)})


def error_response(
    status: int, message: str, error_type: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "status": status,
        "error_message": message,
        "error_type": error_type,
        "title": error_type,
        "detail": message,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # pydantic names the branch of a union/function validator; it says nothing to a user
    parts = [p for p in parts if not p.startswith("function-") and "[" not in p]
    return ".".join(parts)


def validation_message(exc: RequestValidationError) -> str:
    messages = []
    for err in exc.errors():
        kind = err.get("type", "")
        where = _location(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid value"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if kind == "json_invalid":
            messages.append("the request body is not valid JSON")
        elif kind == "missing" and not where:
            messages.append("a JSON request body is required")
        elif kind == "extra_forbidden":
            messages.append(f"{where}: unknown field (check its spelling)")
        elif kind == "missing":
            messages.append(f"{where}: field required")
        else:
            messages.append(f"{where}: {msg}" if where else msg)
    return "; ".join(messages) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.error_type, exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        error = store_unavailable(exc)
        return error_response(error.status, error.message, error.error_type, error.headers)

    @app.exception_handler(ArchiveUnavailable)
    async def _archive_unavailable(_request: Request, exc: ArchiveUnavailable) -> JSONResponse:
        # an archived log that cannot be read now (its storage down, the object gone): the
        # build is there, its log is not for the moment
        return error_response(503, str(exc), "archive_unavailable",
                              {"Retry-After": str(ARCHIVE_RETRY_AFTER_S)})

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return error_response(REFUSAL_STATUS[exc.reason], exc.message, exc.reason.value, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(exc), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, str(exc.detail), kind, headers)
