"""Recording an action in the audit log: one call, `record(request, actor, action, ...)`,
from any route (build start, cancel, rebuild, token create and revoke, sign-in and failed
sign-in, trigger create, change, delete and run; key changes add theirs the same way).
The source is the client's address as this server sees it. `details` must hold no
secret: callers pass names, ids and scopes, never a token, password or key
(docs/access.md)."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import Request

from slipway.store.interfaces import Store
from slipway.store.records import AuditEntry

log = logging.getLogger("slipway.audit")

BUILD_START = "build.start"
BUILD_CANCEL = "build.cancel"
BUILD_REBUILD = "build.rebuild"
TOKEN_CREATE = "token.create"
TOKEN_REVOKE = "token.revoke"
SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.failed"
SIGN_OUT = "auth.sign_out"
TRIGGER_CREATE = "trigger.create"
TRIGGER_UPDATE = "trigger.update"
TRIGGER_DELETE = "trigger.delete"
TRIGGER_RUN = "trigger.run"

ACTIONS = (BUILD_START, BUILD_CANCEL, BUILD_REBUILD, TOKEN_CREATE, TOKEN_REVOKE, SIGN_IN,
           SIGN_IN_FAILED, SIGN_OUT, TRIGGER_CREATE, TRIGGER_UPDATE, TRIGGER_DELETE,
           TRIGGER_RUN)

# the actor of a failed authentication: who it was is what failed to be shown
UNKNOWN_ACTOR = "(unknown)"


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def record(request: Request, actor: str, action: str, *,
                 namespace: str | None = None, target: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
    store: Store = request.app.state.deps.store
    entry = AuditEntry(at=time.time(), actor=actor, action=action, namespace=namespace,
                       target=target, source=client_address(request),
                       details=dict(details or {}))
    await store.audit.record(entry)
    log.info("audit: %s %s %s%s", actor, action, namespace + " " if namespace else "",
             target or "")
