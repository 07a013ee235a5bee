"""Webhook deliveries (docs/triggers.md#webhooks): who sent them (the signature, compared
in constant time), which delivery it is, and the push it tells of, for GitHub, GitLab and
slipway's generic form. Plain functions of the headers and the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

ZERO_SHA = "0" * 40
GITHUB_COMMITS_LISTED = 20
GENERIC_SIGNATURE = "X-Slipway-Signature-256"
GENERIC_DELIVERY = "X-Slipway-Delivery"
GENERIC_EVENT = "X-Slipway-Event"


class Unauthenticated(Exception):
    """The delivery's signature (or token) is missing or wrong: answered 401. The message
    never holds the secret nor what was sent in its place."""


class BadDelivery(Exception):
    """The body is not what the event should carry: answered 400 with the message."""


@dataclass(frozen=True)
class Push:
    """A push of one ref, as every forge's delivery is read."""

    ref: str  # refs/heads/main, refs/tags/v1
    commit: str  # the pushed commit (40 hex)
    default_branch: str | None
    # files the pushed commits changed; None when the delivery does not list them all
    changed: frozenset[str] | None
    message: str = ""
    author: dict[str, str] = field(default_factory=dict)
    url: str = ""  # the commit's page on the forge
    deleted: bool = False

    @property
    def is_tag(self) -> bool:
        return self.ref.startswith("refs/tags/")

    @property
    def name(self) -> str:
        """The branch or tag name."""
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix):]
        return self.ref


@dataclass(frozen=True)
class Delivery:
    """What a delivery is: its event name, its id (the forge's, or the body's hash when it
    sends none) and, for a push, the push; `ignore` says why a delivery builds nothing."""

    event: str
    key: str
    push: Push | None = None
    ignore: str | None = None
    ping: bool = False


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or ""


def body_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def sign(secret: str, body: bytes) -> str:
    """The `sha256=<hex>` signature GitHub (and the generic form) send."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(kind: str, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Unauthenticated unless the delivery carries the trigger's signature (GitHub,
    generic: HMAC-SHA256 of the raw body) or token (GitLab)."""
    if kind == "gitlab":
        sent = _header(headers, "X-Gitlab-Token")
        if not sent:
            raise Unauthenticated("no X-Gitlab-Token header: set the webhook's secret token "
                                  "to the trigger's webhook secret")
        if not hmac.compare_digest(sent.encode(), secret.encode()):
            raise Unauthenticated("X-Gitlab-Token is not the trigger's webhook secret")
        return
    name = "X-Hub-Signature-256" if kind == "github" else GENERIC_SIGNATURE
    sent = _header(headers, name)
    if not sent:
        raise Unauthenticated(f"no {name} header: the delivery is not signed; set the "
                              "webhook's secret to the trigger's webhook secret")
    if not hmac.compare_digest(sent.encode(), sign(secret, body).encode()):
        raise Unauthenticated(f"{name} does not match the body signed with the trigger's "
                              "webhook secret")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadDelivery(f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadDelivery("the body is not a JSON object")
    return value


def _changed(commits: Any, total: int | None) -> frozenset[str] | None:
    if not isinstance(commits, list) or not commits:
        return None
    if total is not None and total > len(commits):
        return None  # the delivery lists only some of the commits
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "removed", "modified"):
            files.update(str(f) for f in commit.get(key) or [])
    return frozenset(files)


def _sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 40 or not all(
            c in "0123456789abcdef" for c in value):
        raise BadDelivery(f"{what}: {str(value)[:60]!r} is not a commit id (40 hex digits)")
    return value


def parse(kind: str, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The delivery, read after `verify`."""
    if kind == "github":
        return _github(headers, body)
    if kind == "gitlab":
        return _gitlab(headers, body)
    return _generic(headers, body)


def _github(headers: Mapping[str, str], body: bytes) -> Delivery:
    event = _header(headers, "X-GitHub-Event")
    key = _header(headers, "X-GitHub-Delivery") or body_key(body)
    if _header(headers, "Content-Type").startswith("application/x-www-form-urlencoded"):
        # the webhook's other content type: the JSON in a `payload` field (signed as sent)
        form = parse_qs(body.decode(errors="replace"))
        body = (form.get("payload") or [""])[0].encode()
    payload = _json(body)
    if event == "ping":
        return Delivery(event, key, ping=True)
    if event == "create":
        return Delivery(event, key, ignore=(
            "a create event carries no commit; GitHub's push event of the same tag or "
            "branch builds it"))
    if event != "push":
        return Delivery(event or "(none)", key, ignore=(
            f"event {event or '(no X-GitHub-Event)'!r} builds nothing; a trigger builds "
            "push events (branches and tags)"))
    if payload.get("deleted") or payload.get("after") == ZERO_SHA:
        return Delivery(event, key, ignore=f"{payload.get('ref')} was deleted")
    head = payload.get("head_commit") or {}
    repo = payload.get("repository") or {}
    author = head.get("author") or {}
    push = Push(
        ref=str(payload.get("ref") or ""),
        commit=_sha(payload.get("after"), "after"),
        default_branch=repo.get("default_branch") or repo.get("master_branch"),
        # GitHub lists at most 20 commits: with 20, there may have been more
        changed=_changed(payload.get("commits"), None)
        if len(payload.get("commits") or []) < GITHUB_COMMITS_LISTED else None,
        message=str(head.get("message") or ""),
        author={k: str(author[k]) for k in ("name", "email", "username") if author.get(k)},
        url=str(head.get("url") or ""),
    )
    return Delivery(event, key, push=push)


def _gitlab(headers: Mapping[str, str], body: bytes) -> Delivery:
    event = _header(headers, "X-Gitlab-Event")
    key = (_header(headers, "Idempotency-Key") or _header(headers, "X-Gitlab-Event-UUID")
           or body_key(body))
    payload = _json(body)
    kind = payload.get("object_kind")
    if kind not in ("push", "tag_push"):
        return Delivery(event or str(kind), key, ignore=(
            f"{event or kind!r} builds nothing; a trigger builds Push Hook and Tag Push Hook "
            "events"))
    after = payload.get("checkout_sha") or payload.get("after")
    if not after or after == ZERO_SHA:
        return Delivery(event, key, ignore=f"{payload.get('ref')} was deleted")
    project = payload.get("project") or {}
    commits = payload.get("commits") or []
    head: dict[str, Any] = next((c for c in commits if c.get("id") == after), {})
    author = head.get("author") or {}
    if not author and payload.get("user_name"):
        author = {"name": payload.get("user_name"), "email": payload.get("user_email")}
    total = payload.get("total_commits_count")
    push = Push(
        ref=str(payload.get("ref") or ""),
        commit=_sha(after, "checkout_sha"),
        default_branch=project.get("default_branch"),
        changed=_changed(commits, int(total) if isinstance(total, int) else None),
        message=str(head.get("message") or payload.get("message") or ""),
        author={k: str(author[k]) for k in ("name", "email") if author.get(k)},
        url=str(head.get("url") or ""),
    )
    return Delivery(event or str(kind), key, push=push)


def _generic(headers: Mapping[str, str], body: bytes) -> Delivery:
    """{"ref": "refs/heads/main", "commit": "<40 hex>", "changed": [...] (optional),
    "message": "...", "author": {"name", "email"}} (docs/triggers.md)."""
    key = _header(headers, GENERIC_DELIVERY) or body_key(body)
    payload = _json(body)
    event = _header(headers, GENERIC_EVENT) or "push"
    if event == "ping":
        return Delivery(event, key, ping=True)
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref.startswith(("refs/heads/", "refs/tags/")):
        raise BadDelivery("ref: give the pushed ref, refs/heads/BRANCH or refs/tags/TAG")
    changed = payload.get("changed")
    author = payload.get("author") or {}
    push = Push(
        ref=ref,
        commit=_sha(payload.get("commit"), "commit"),
        default_branch=payload.get("default_branch"),
        changed=frozenset(str(f) for f in changed) if isinstance(changed, list) else None,
        message=str(payload.get("message") or ""),
        author={k: str(author[k]) for k in ("name", "email") if isinstance(author, dict)
                and author.get(k)},
    )
    return Delivery(event, key, push=push)
