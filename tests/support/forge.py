"""Webhook deliveries as GitHub and GitLab send them: GitHub's own examples (the npm
package @octokit/webhooks-examples, installed by `make setup` in tests/support/forge/) and
the bodies GitLab documents (tests/data/gitlab/), signed the way each forge signs."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "forge" / "node_modules" / "@octokit" / "webhooks-examples" / \
    "api.github.com" / "index.json"
GITLAB = ROOT.parent / "data" / "gitlab"


@functools.cache
def _github_index() -> dict[str, list[dict[str, Any]]]:
    if not EXAMPLES.exists():
        pytest.skip("@octokit/webhooks-examples is not installed: make setup (npm ci in "
                    "tests/support/forge)")
    return {e["name"]: e["examples"] for e in json.loads(EXAMPLES.read_text())}


def github_example(event: str, **where: Any) -> dict[str, Any]:
    """The first of GitHub's examples of `event` whose fields have the given values."""
    for example in _github_index()[event]:
        if all(example.get(k) == v for k, v in where.items()):
            return dict(example)
    raise LookupError(f"no GitHub example of {event} with {where}")


def gitlab_example(name: str) -> dict[str, Any]:
    return dict(json.loads((GITLAB / f"{name}.json").read_text()))


def github_delivery(event: str, payload: dict[str, Any], secret: str | None,
                    delivery: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of GitHub's POST (X-Hub-Signature-256 over the raw body)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/abc123",
               "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-GitHub-Hook-ID": "1"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
            secret.encode(), body, hashlib.sha256).hexdigest()
    return body, headers


def gitlab_delivery(event: str, payload: dict[str, Any], token: str | None,
                    delivery: str | None = None) -> tuple[bytes, dict[str, str]]:
    """GitLab's POST: the secret token as X-Gitlab-Token, the event in X-Gitlab-Event."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "GitLab/17.5.0",
               "X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery or str(uuid.uuid4()),
               "X-Gitlab-Instance": "https://gitlab.example.com"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return body, headers
