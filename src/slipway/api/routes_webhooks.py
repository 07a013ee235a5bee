"""The webhook route of each trigger (docs/triggers.md#webhooks): no API token, the
delivery's signature (or GitLab's token) instead. Every delivery is recorded in the
trigger's recent deliveries with what it did and why; the secret never is, nor logged."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from slipway.api.deps import ApiDeps, get_deps
from slipway.api.errors import REFUSAL_STATUS, ApiError
from slipway.api.models import ErrorOut
from slipway.api.routes_triggers import WEBHOOK_PATH, trigger_store
from slipway.domain.refusals import Refused
from slipway.store.errors import SecretsUnavailable
from slipway.store.interfaces import Triggers
from slipway.store.records import StoredTrigger
from slipway.triggers.builds import submit_push
from slipway.triggers.matching import why_not
from slipway.triggers.webhooks import BadDelivery, Unauthenticated, parse, verify

log = logging.getLogger("slipway.triggers")
router = APIRouter(tags=["triggers"])
Deps = Annotated[ApiDeps, Depends(get_deps)]


class WebhookOut(BaseModel):
    """What a delivery did (also in the trigger's deliveries)."""

    outcome: str = Field(description="built, ignored, ping, duplicate or failed")
    reason: str = Field(description="why it built nothing, or what it built")
    build_id: str | None = None
    tags: list[str] | None = None
    commit: str | None = None
    ref: str | None = None


# a push the admission refuses is answered with its outcome; the rest with the error
REFUSED = {"model": WebhookOut | ErrorOut}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookOut, "description": "a ping, or a delivery received before"},
    202: {"model": WebhookOut, "description": "received; it builds nothing (why: reason)"},
    400: REFUSED, 403: REFUSED, 429: REFUSED,
    **{code: {"model": ErrorOut} for code in (401, 404, 413, 503)},
}


def answer(status: int, outcome: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"outcome": outcome, "reason": reason, **extra}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body (the signature is over its bytes); 413 past `limit`, read no further."""
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"the delivery is larger than {limit} bytes "
                       "(TRIGGER_WEBHOOK_MAX_BYTES)", "payload_too_large")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(WEBHOOK_PATH, status_code=201, response_model=WebhookOut, responses=RESPONSES)
async def receive(trigger_id: str, request: Request, d: Deps) -> JSONResponse:
    """A push (or ping) from GitHub, GitLab or the generic form. 201 with the build it
    started; 202 with the reason when it builds nothing; 200 for a ping or a delivery
    received before; 401 unsigned or badly signed; 413 too large."""
    store = trigger_store(d)
    trigger = await store.get(trigger_id) if len(trigger_id) <= 64 else None
    if trigger is None:
        raise ApiError(404, f"no trigger {trigger_id!r}", "not_found")
    body = await read_body(request, d.config.TRIGGER_WEBHOOK_MAX_BYTES)
    headers = dict(request.headers)
    try:
        secret = (await store.credentials(trigger.id)).get("webhook_secret", "")
    except SecretsUnavailable as exc:
        log.error("webhook for trigger %s: %s", trigger.id, exc)
        raise ApiError(503, str(exc), "secrets_unavailable") from None
    try:
        if not secret:
            raise Unauthenticated("the trigger has no webhook secret; rotate it")
        verify(trigger.kind, secret, headers, body)
    except Unauthenticated as exc:
        client = request.client.host if request.client else "?"
        log.warning("webhook delivery for trigger %s (%s/%s) from %s refused: %s",
                    trigger.id, trigger.namespace, trigger.repository, client, exc)
        await store.record_delivery(trigger.id, None, _event_header(headers), "refused",
                                    str(exc))
        raise ApiError(401, str(exc), "unauthorized") from None
    try:
        delivery = parse(trigger.kind, headers, body)
    except BadDelivery as exc:
        await store.record_delivery(trigger.id, None, _event_header(headers), "failed",
                                    str(exc))
        raise ApiError(400, str(exc), "invalid_request") from None
    return await _act(d, store, trigger, delivery)


def _event_header(headers: dict[str, str]) -> str:
    for name in ("x-github-event", "x-gitlab-event", "x-slipway-event"):
        if headers.get(name):
            return headers[name][:64]
    return "(unknown)"


async def _act(d: ApiDeps, store: Triggers, trigger: StoredTrigger,
               delivery: Any) -> JSONResponse:
    push = delivery.push
    ref = push.ref if push else None
    commit = push.commit if push else None
    if delivery.ping:
        reason = "pong: the webhook reaches slipway and its secret matches"
        outcome, status = "ping", 200
    elif delivery.ignore is not None:
        reason, outcome, status = delivery.ignore, "ignored", 202
    elif not trigger.enabled:
        reason, outcome, status = "the trigger is disabled", "ignored", 202
    else:
        reason = why_not(trigger.spec, push) or ""
        outcome, status = ("ignored", 202) if reason else ("received", 201)
    row = await store.record_delivery(trigger.id, delivery.key, delivery.event, outcome,
                                      reason, ref, commit)
    if row is None:
        earlier = await store.find_delivery(trigger.id, delivery.key)
        return answer(200, "duplicate", "this delivery was received before; nothing more "
                      "is done", build_id=earlier.build_id if earlier else None)
    if outcome != "received":
        return answer(status, outcome, reason)
    try:
        admitted = await submit_push(d.admission, store, d.config, trigger, push,
                                     cause=f"{trigger.kind} {delivery.event}")
    except Refused as exc:
        await store.finish_delivery(row, "failed", exc.message, None)
        return answer(REFUSAL_STATUS.get(exc.reason, 400), "failed", exc.message)
    record = admitted.record
    await store.finish_delivery(row, "built", f"build {record.id} of {push.name}@"
                                f"{push.commit[:7]}, tags {', '.join(record.tags)}",
                                record.id)
    return answer(201, "built", "", build_id=record.id, tags=list(record.tags),
                  commit=push.commit, ref=push.ref)
