"""Operations: Prometheus metrics, liveness, readiness."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from slipway.api.data_dir_room import has_room
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.models import HealthOut, ReadyOut

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """The process answers."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(d: Annotated[ApiDeps, Depends(get_deps)]) -> JSONResponse:
    """200 when every part (database, orchestrator, DATA_DIR's free space, ...) is
    ready, else 503 naming them."""
    try:
        checks = await d.readiness()
    except Exception:
        checks = {"readiness check": False}
    # uploads, and the embedded SQLite database, need room to write
    checks["data_dir"] = await asyncio.to_thread(has_room, Path(d.config.DATA_DIR))
    ready = all(checks.values())
    failing = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {"ready": ready, "checks": checks}
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=200 if ready else 503)
