"""Build triggers (docs/triggers.md): create, list, show, change (and disable), delete, run
now on a ref, and their recent webhook deliveries. Write scope on the namespace changes
them; read scope shows them. Credentials are write-only: the API names which are set.
Each change and "run now" is in the audit log, with names, never a credential's value."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from slipway.api import audit
from slipway.api.auth import Principal, Role, require
from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import ApiError, bad_request, not_found
from slipway.api.models import BuildOut, ErrorOut
from slipway.api.routes_builds import check_names, created
from slipway.store.errors import SecretsUnavailable, TriggerNameTaken
from slipway.store.interfaces import Triggers, triggers_of
from slipway.store.records import StoredTrigger
from slipway.triggers.builds import RefNotFound, resolve_ref, submit_push
from slipway.triggers.schedule import next_run
from slipway.triggers.spec import CREDENTIALS, TriggerIn, TriggerSettings
from slipway.triggers.webhooks import Push

PREFIX = "/api/v1/repository/{namespace}/{repository}/trigger"
WEBHOOK_PATH = "/api/v1/webhooks/{trigger_id}"
router = APIRouter(prefix=PREFIX, tags=["triggers"],
                   responses={c: {"model": ErrorOut} for c in (400, 401, 403, 404)})
Deps = Annotated[ApiDeps, Depends(get_deps)]


class TriggerOut(TriggerSettings):
    id: str
    namespace: str
    repository: str
    name: str
    kind: str
    git_url: str
    enabled: bool
    credentials: list[str] = Field(description="which credentials are set (never their "
                                   "values): ssh_key, token, token_user, status_token, "
                                   "webhook_secret")
    webhook_url: str
    next_run: float | None
    created: float
    updated: float
    webhook_secret: str | None = Field(
        None, description="only when the trigger is created or its secret rotated: set it "
        "as the webhook's secret (GitHub, generic) or secret token (GitLab)")


class TriggerList(BaseModel):
    triggers: list[TriggerOut]


class RunRequest(BaseModel):
    ref: str = Field(min_length=1, max_length=255,
                     description="branch, tag, or full ref (refs/heads/main) to build")
    pull: bool = False
    no_cache: bool = False


class DeliveryOut(BaseModel):
    id: int
    event: str
    received: float
    outcome: str
    reason: str
    ref: str | None
    commit: str | None
    build_id: str | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


def trigger_store(d: ApiDeps) -> Triggers:
    store = triggers_of(d.store)
    if store is None:
        raise ApiError(404, "build triggers are slipway's own: in Quay mode Quay's triggers "
                       "start builds (set them up in Quay)", "not_found")
    return store


def webhook_url(d: ApiDeps, trigger_id: str) -> str:
    return str(d.config.PUBLIC_URL).rstrip("/") + WEBHOOK_PATH.format(trigger_id=trigger_id)


def view(d: ApiDeps, t: StoredTrigger, secret: str | None = None) -> TriggerOut:
    settings = TriggerSettings.model_validate(
        {k: v for k, v in t.spec.items() if k in TriggerSettings.model_fields})
    return TriggerOut(
        **settings.model_dump(), id=t.id, namespace=t.namespace, repository=t.repository,
        name=t.name, kind=t.kind, git_url=t.git_url, enabled=t.enabled,
        credentials=t.credential_names, webhook_url=webhook_url(d, t.id),
        next_run=t.next_run, created=t.created, updated=t.updated, webhook_secret=secret)


async def load(d: ApiDeps, namespace: str, repository: str, trigger_id: str) -> StoredTrigger:
    check_names(namespace, repository)
    found = await trigger_store(d).get(trigger_id) if len(trigger_id) <= 64 else None
    if found is None or (found.namespace, found.repository) != (namespace, repository):
        raise not_found(f"no trigger {trigger_id!r} in repository {namespace}/{repository}")
    return found


def scheduled(settings: dict[str, Any], enabled: bool) -> float | None:
    schedule = settings.get("schedule")
    if not enabled or not schedule:
        return None
    return next_run(schedule["cron"], time.time())


def merged_credentials(body: TriggerIn, old: dict[str, str]) -> tuple[dict[str, str],
                                                                       str | None]:
    """The credentials to store: given ones replace, "" removes, left out keeps; a new
    webhook secret when there is none or one is asked for (returned to show once)."""
    creds = dict(old)
    for name in CREDENTIALS:
        value = getattr(body, name)
        if value is None:
            continue
        text = value if isinstance(value, str) else value.get_secret_value()
        if text:
            creds[name] = text
        else:
            creds.pop(name, None)
    secret = None
    if not creds.get("webhook_secret") or body.rotate_webhook_secret:
        secret = creds["webhook_secret"] = secrets.token_urlsafe(32)
    return creds, secret


def changed_credentials(body: TriggerIn) -> dict[str, list[str]]:
    """The audit log's account of a change of credentials: names only."""
    given = {name: getattr(body, name) for name in CREDENTIALS}
    shown = {
        "set": sorted(n for n, v in given.items() if v is not None and _text(v)),
        "removed": sorted(n for n, v in given.items() if v is not None and not _text(v)),
    }
    return {k: v for k, v in shown.items() if v}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value.get_secret_value())


CONFLICT_OR_LOCKED: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (409, 503)}


@router.post("/", status_code=201, response_model=TriggerOut, responses=CONFLICT_OR_LOCKED)
async def create_trigger(namespace: str, repository: str, body: TriggerIn, request: Request,
                         d: Deps, principal: Annotated[Principal, Depends(require(Role.WRITE))]
                         ) -> TriggerOut:
    """A new trigger; the answer holds its webhook URL and secret (shown once)."""
    check_names(namespace, repository)
    store = trigger_store(d)
    creds, secret = merged_credentials(body, {})
    settings = body.settings()
    try:
        t = await store.create(namespace, repository, body.name, body.kind, body.git_url,
                               settings, creds, scheduled(settings, body.enabled),
                               enabled=body.enabled)
    except TriggerNameTaken:
        raise ApiError(409, f"repository {namespace}/{repository} already has a trigger "
                       f"named {body.name!r}; choose another name or change that one",
                       "conflict") from None
    except SecretsUnavailable as exc:
        raise ApiError(503, str(exc), "secrets_unavailable") from None
    await audit.record(request, principal.name, audit.TRIGGER_CREATE, namespace=namespace,
                       target=t.id, details={
                           "repository": repository, "name": t.name, "kind": t.kind,
                           "enabled": t.enabled, "credentials": t.credential_names})
    return view(d, t, secret)


@router.get("/", response_model=TriggerList)
async def list_triggers(namespace: str, repository: str, d: Deps,
                        _p: Annotated[Principal, Depends(require(Role.READ))]) -> TriggerList:
    check_names(namespace, repository)
    found = await trigger_store(d).list_for_repository(namespace, repository)
    return TriggerList(triggers=[view(d, t) for t in found])


@router.get("/{trigger_id}", response_model=TriggerOut)
async def get_trigger(namespace: str, repository: str, trigger_id: str, d: Deps,
                      _p: Annotated[Principal, Depends(require(Role.READ))]) -> TriggerOut:
    return view(d, await load(d, namespace, repository, trigger_id))


@router.patch("/{trigger_id}", response_model=TriggerOut, responses=CONFLICT_OR_LOCKED)
async def change_trigger(namespace: str, repository: str, trigger_id: str,
                         request: Request, d: Deps,
                         principal: Annotated[Principal, Depends(require(Role.WRITE))]
                         ) -> TriggerOut:
    """Change the fields given (`{"enabled": false}` disables it); a credential given as
    "" is removed, one left out kept; `rotate_webhook_secret` makes a new secret."""
    t = await load(d, namespace, repository, trigger_id)
    try:
        given = await request.json()
    except ValueError:
        raise bad_request("the body is not JSON; send the fields to change") from None
    if not isinstance(given, dict):
        raise bad_request("the body must be a JSON object of the fields to change")
    current = {k: v for k, v in t.spec.items() if k in TriggerSettings.model_fields}
    current.update(name=t.name, kind=t.kind, git_url=t.git_url, enabled=t.enabled)
    current.update(given)
    try:
        body = TriggerIn.model_validate(current)
    except ValidationError as exc:
        raise bad_request("; ".join(
            str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors()
        )) from None
    store = trigger_store(d)
    try:
        creds, secret = merged_credentials(body, await store.credentials(t.id))
        settings = body.settings()
        await store.update(t.id, name=body.name, kind=body.kind, git_url=body.git_url,
                           spec=settings, enabled=body.enabled, credentials=creds,
                           next_run=scheduled(settings, body.enabled))
    except TriggerNameTaken:
        raise ApiError(409, f"repository {namespace}/{repository} already has a trigger "
                       f"named {body.name!r}", "conflict") from None
    except SecretsUnavailable as exc:
        raise ApiError(503, str(exc), "secrets_unavailable") from None
    found = await store.get(t.id)
    assert found is not None
    # the names of the fields given, never their values (some are credentials)
    details: dict[str, Any] = {"repository": repository, "name": found.name,
                               "fields": sorted(given), "enabled": found.enabled,
                               "webhook_secret_rotated": body.rotate_webhook_secret,
                               **changed_credentials(body)}
    await audit.record(request, principal.name, audit.TRIGGER_UPDATE, namespace=namespace,
                       target=t.id, details=details)
    return view(d, found, secret)


@router.delete("/{trigger_id}", status_code=204)
async def delete_trigger(namespace: str, repository: str, trigger_id: str, request: Request,
                         d: Deps, principal: Annotated[Principal, Depends(require(Role.WRITE))]
                         ) -> Response:
    t = await load(d, namespace, repository, trigger_id)
    await trigger_store(d).delete(t.id)
    await audit.record(request, principal.name, audit.TRIGGER_DELETE, namespace=namespace,
                       target=t.id, details={"repository": repository, "name": t.name})
    return Response(status_code=204)


@router.post("/{trigger_id}/run", status_code=201, response_model=BuildOut,
             responses={c: {"model": ErrorOut} for c in (409, 429, 503)})
async def run_trigger(namespace: str, repository: str, trigger_id: str, body: RunRequest,
                      request: Request, d: Deps,
                      principal: Annotated[Principal, Depends(require(Role.WRITE))]
                      ) -> JSONResponse:
    """Build the commit `ref` points to now (filters do not apply; a disabled trigger
    runs too)."""
    t = await load(d, namespace, repository, trigger_id)
    store = trigger_store(d)
    try:
        ref, commit = await resolve_ref(t, await store.credentials(t.id), body.ref)
    except RefNotFound as exc:
        raise bad_request(str(exc)) from None
    except SecretsUnavailable as exc:
        raise ApiError(503, str(exc), "secrets_unavailable") from None
    push = Push(ref=ref, commit=commit, default_branch=None, changed=None)
    admitted = await submit_push(d.admission, store, d.config, t, push, cause="manual",
                                 user=principal.name, pull=body.pull, no_cache=body.no_cache)
    await audit.record(request, principal.name, audit.TRIGGER_RUN, namespace=namespace,
                       target=t.id, details={"repository": repository, "name": t.name,
                                             "ref": ref, "commit": commit,
                                             "build": admitted.record.id})
    return await created(request, admitted)


@router.get("/{trigger_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(namespace: str, repository: str, trigger_id: str, d: Deps,
                          _p: Annotated[Principal, Depends(require(Role.READ))]
                          ) -> DeliveryList:
    """The trigger's latest webhook deliveries, newest first: what each did, and why."""
    t = await load(d, namespace, repository, trigger_id)
    found = await trigger_store(d).deliveries(t.id)
    return DeliveryList(deliveries=[DeliveryOut(
        id=x.id, event=x.event, received=x.received, outcome=x.outcome, reason=x.reason,
        ref=x.ref, commit=x.commit_sha, build_id=x.build_id) for x in found])
