"""A build's trace (docs/traces.md): its spans from submit to last push."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from slipway.api.auth import Principal, Role, require
from slipway.api.routes_builds import ERRORS, PREFIX, Deps, Namespace, RepoName, load_build
from slipway.tracing.build_tracing import ROOT_SPAN
from slipway.tracing.ids import trace_id_of

router = APIRouter(prefix=PREFIX, tags=["builds"], responses=ERRORS)


class SpanOut(BaseModel):
    trace_id: str = Field(description="32 hex digits, the build's trace")
    span_id: str = Field(description="16 hex digits")
    parent_span_id: str | None = Field(description="the parent span's id; null: the root")
    name: str = Field(examples=["executor start"])
    service: str = Field(description="who wrote it: slipway-manager or slipway-worker")
    start: float = Field(description="UNIX seconds")
    end: float = Field(description="UNIX seconds")
    status: str = Field(description="unset, ok or error")
    attributes: dict[str, Any]


class TraceOut(BaseModel):
    build_id: str
    trace_id: str
    complete: bool = Field(description="the build ended and its root span is kept")
    spans: list[SpanOut] = Field(description="by start time")


@router.get("/{build_id}/trace", response_model=TraceOut)
async def get_trace(
    namespace: Namespace,
    repository: RepoName,
    build_id: str,
    d: Deps,
    _p: Annotated[Principal, Depends(require(Role.READ))],
) -> TraceOut:
    """The build's trace: the spans kept so far (a build under way has no root yet)."""
    await load_build(d, namespace, repository, build_id)
    spans = await d.control.tracing.read(build_id)
    spans.sort(key=lambda s: (s["start"], s["parent_span_id"] is not None))
    return TraceOut(
        build_id=build_id,
        trace_id=f"{trace_id_of(build_id):032x}",
        complete=any(s["name"] == ROOT_SPAN and s["parent_span_id"] is None for s in spans),
        spans=[SpanOut(**s) for s in spans],
    )
