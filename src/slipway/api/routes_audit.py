"""slipway's audit log routes (docs/access.md): read it by filter, a page at a time, or
export it as JSON Lines. An admin of `*` reads every entry; an admin of some namespaces
reads the entries of those namespaces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import ApiError
from slipway.api.models import ErrorOut
from slipway.api.models_access import AuditEntryOut, AuditPage
from slipway.store.records import AuditQuery

PREFIX = "/api/v1/slipway/audit"
router = APIRouter(prefix=PREFIX, tags=["access"],
                   responses={code: {"model": ErrorOut} for code in (400, 401, 403, 429)})
Deps = Annotated[ApiDeps, Depends(get_deps)]
Auditor = Annotated[Principal, Depends(require(Role.ADMIN))]
EXPORT_PAGE = 1000


def audit_query(
    holder: Auditor,
    namespace: Annotated[str | None, Query(description="only this namespace's")] = None,
    actor: Annotated[str | None, Query(description="only this actor's")] = None,
    action: Annotated[str | None, Query(description="only this action, e.g. build.cancel")]
    = None,
    since: Annotated[float | None, Query(description="only from this UNIX time on")] = None,
    until: Annotated[float | None, Query(description="only before this UNIX time")] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="only entries after this id "
                                "(the last page's next_after)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="most entries returned")] = 100,
) -> AuditQuery:
    namespaces: frozenset[str] | None = None
    if holder.scopes.get("*") != Role.ADMIN:
        namespaces = frozenset(ns for ns, role in holder.scopes.items()
                               if role == Role.ADMIN and ns != "*")
        if namespace is not None and namespace not in namespaces:
            raise ApiError(403, f"this token lacks admin access to namespace {namespace!r}, "
                           "whose audit log it asked for", "insufficient_scope")
    return AuditQuery(namespace=namespace, actor=actor, action=action, since=since,
                      until=until, namespaces=namespaces, after_id=after, limit=limit)


Query_ = Annotated[AuditQuery, Depends(audit_query)]


@router.get("/", response_model=AuditPage)
async def read(d: Deps, q: Query_) -> AuditPage:
    """The entries that match, oldest first, a page at a time."""
    entries = await d.store.audit.query(q)
    full = len(entries) == q.limit
    return AuditPage(entries=[AuditEntryOut(**e.as_dict()) for e in entries],
                     next_after=entries[-1].id if full and entries else None)


@router.get("/export", response_class=StreamingResponse, responses={
    200: {"content": {"application/x-ndjson": {}},
          "description": "one entry (as in the listing) a line"}})
async def export(d: Deps, q: Query_) -> StreamingResponse:
    """Every entry that matches, as JSON Lines (one object a line), oldest first;
    `limit` is the size of each page read, not a bound."""

    async def lines() -> AsyncIterator[bytes]:
        page = replace(q, limit=max(q.limit, EXPORT_PAGE))
        while True:
            entries = await d.store.audit.query(page)
            for entry in entries:
                yield (json.dumps(entry.as_dict(), sort_keys=True) + "\n").encode()
            if len(entries) < page.limit:
                return
            page = replace(page, after_id=entries[-1].id)

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition":
                                      'attachment; filename="slipway-audit.jsonl"'})
