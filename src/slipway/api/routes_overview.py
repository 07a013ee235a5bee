"""slipway's listing and overview routes, for the web UI and scripts: who the token is,
the repositories with builds, and the build manager's state at a glance."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from slipway.api.auth import Principal, Role, authenticate, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.models import ErrorOut
from slipway.api.models_overview import (
    ExecutorWorkers,
    FailedAttempt,
    FailureExample,
    FailureKind,
    FailureOut,
    FailuresOut,
    ManagerOut,
    NamespaceQueueOut,
    RepositoryList,
    RepositoryOut,
    UserOut,
    WorkersOut,
)
from slipway.api.serialize import build_view
from slipway.domain.results import AttemptEnd, describe

router = APIRouter(prefix="/api/v1", responses={401: {"model": ErrorOut}})
Deps = Annotated[ApiDeps, Depends(get_deps)]
Reader = Annotated[Principal, Depends(require(Role.READ))]

_USER_ERROR = "the build failed: a Dockerfile step, the context or the push"


def readable_namespaces(principal: Principal) -> list[str] | None:
    """The namespaces the token may read; None for all of them."""
    if "*" in principal.scopes:
        return None
    return sorted(ns for ns, role in principal.scopes.items() if role >= Role.READ)


@router.get("/user/", response_model=UserOut, tags=["user"])
async def current_user(principal: Annotated[Principal, Depends(authenticate)]) -> UserOut:
    """The API token in use: its name and scopes."""
    return UserOut(
        username=principal.name,
        scopes={ns: role.name.lower() for ns, role in principal.scopes.items()},
    )


@router.get("/repository", response_model=RepositoryList, tags=["repositories"])
async def list_repositories(
    d: Deps,
    principal: Reader,
    namespace: Annotated[str | None, Query(description="only this namespace")] = None,
) -> RepositoryList:
    """**slipway**: repositories with builds that the token may read, the most recently
    built first, each with its newest build."""
    namespaces = readable_namespaces(principal)
    if namespace is not None:
        namespaces = [namespace] if principal.allows(namespace, Role.READ) else []
    summaries = await d.store.overview.repositories(namespaces)
    return RepositoryList(repositories=[
        RepositoryOut(
            namespace=s.namespace,
            name=s.name,
            last_modified=s.last_build.started if s.last_build else 0.0,
            build_count=s.build_count,
            active_builds=s.active_builds,
            last_build=build_view(s.last_build) if s.last_build else None,
        )
        for s in summaries
    ])


def failure_kind(reason: str) -> FailureKind:
    """A build that failed by its own error (phase `error`) is the user's to fix; every
    other failed attempt (expiry, lost heartbeat, executor, manager, time limit) is the
    service's, and an operator's to look at. Unknown outcomes count as the service's."""
    return "user" if reason == AttemptEnd.USER_ERROR.value else "infrastructure"


def _description(reason: str) -> str:
    if reason == AttemptEnd.USER_ERROR.value:
        return _USER_ERROR
    try:
        return describe(AttemptEnd(reason))
    except ValueError:
        return reason.replace("_", " ")


@router.get("/manager", response_model=ManagerOut, tags=["operations"])
async def manager_state(
    d: Deps,
    principal: Reader,
    hours: Annotated[float, Query(gt=0, le=24 * 30, description="failures of the last hours")]
    = 24,
) -> ManagerOut:
    """**slipway**: workers running per executor against ALLOWED_WORKER_COUNT, queue depth
    per namespace, failed attempts by reason (namespaces the token may read), each reason
    marked as the build's own failure (`user`) or the service's (`infrastructure`)."""
    manager = d.config.manager
    namespaces = readable_namespaces(principal)
    running = await d.store.overview.workers_by_executor()
    kinds = {e.NAME: e.EXECUTOR for e in manager.EXECUTORS} if manager else {}
    by_executor = [ExecutorWorkers(name=name, executor=kind, running=running.get(name, 0))
                   for name, kind in kinds.items()]
    by_executor += [ExecutorWorkers(name=name or "starting", executor=None, running=n)
                    for name, n in running.items() if name not in kinds]
    limits = manager.NAMESPACE_LIMITS if manager else {}
    queue = [
        NamespaceQueueOut(namespace=n.namespace, waiting=n.waiting, retrying=n.retrying,
                          running=n.running, limit=limits.get(n.namespace))
        for n in await d.store.overview.queue_by_namespace(namespaces)
    ]
    since = time.time() - hours * 3600
    groups = await d.store.overview.recent_failures(since, namespaces)
    reasons = [
        FailureOut(reason=g.reason, kind=failure_kind(g.reason),
                   description=_description(g.reason), count=g.count, last=g.last,
                   executors=dict(g.executors), example=FailureExample(**g.example),
                   recent=[FailedAttempt(**f) for f in g.recent])
        for g in groups
    ]
    return ManagerOut(
        builds_enabled=bool(d.config.FEATURE_BUILD_SUPPORT and manager is not None),
        workers=WorkersOut(
            allowed_worker_count=manager.ALLOWED_WORKER_COUNT if manager else None,
            running=sum(running.values()),
            by_executor=by_executor,
        ),
        queue=queue,
        failures=FailuresOut(
            since=since,
            user_errors=sum(r.count for r in reasons if r.kind == "user"),
            infrastructure_failures=sum(r.count for r in reasons if r.kind == "infrastructure"),
            reasons=reasons,
        ),
    )
