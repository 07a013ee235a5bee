"""Commit statuses (docs/triggers.md#commit-status): the state of a trigger's build posted
to its commit on GitHub (statuses API) or GitLab (commit status API), with a link to the
build's page. A post that fails is tried again later; it never touches the build."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx

from slipway.domain.phases import Phase
from slipway.store.records import BuildRecord, StoredTrigger
from slipway.triggers.spec import SCP_LIKE

POST_TIMEOUT = httpx.Timeout(10.0)
FINAL_STATES = frozenset({"success", "failure", "cancelled"})
# slipway's state -> (GitHub's, GitLab's)
FORGE_STATES = {
    "queued": ("pending", "pending"),
    "started": ("pending", "running"),
    "success": ("success", "success"),
    "failure": ("failure", "failed"),
    "cancelled": ("error", "canceled"),
}
DESCRIPTIONS = {"queued": "queued", "started": "building", "success": "image pushed",
                "failure": "build failed", "cancelled": "build cancelled"}


def state_of(record: BuildRecord) -> str:
    phase = record.phase
    if phase is Phase.WAITING:
        return "queued"
    if phase is Phase.COMPLETE:
        return "success"
    if phase is Phase.CANCELLED:
        return "cancelled"
    if phase in (Phase.ERROR, Phase.INTERNAL_ERROR):
        return "failure"
    return "started"


def repository_path(git_url: str) -> str:
    """'team/app' of https://host/team/app.git, git@host:team/app.git, ssh://git@host/..."""
    path = git_url.split(":", 1)[1] if SCP_LIKE.match(git_url) else urlsplit(git_url).path
    path = path.strip("/")
    return path[:-4] if path.endswith(".git") else path


def host_of(git_url: str) -> str:
    if SCP_LIKE.match(git_url):
        return git_url.split("@", 1)[1].split(":", 1)[0]
    return urlsplit(git_url).hostname or ""


def api_base(trigger: StoredTrigger) -> str:
    """status_api_url, else GitHub's (api.github.com; /api/v3 of an Enterprise host) or
    GitLab's (/api/v4) API of the repository's host."""
    given = trigger.spec.get("status_api_url")
    if given:
        return str(given).rstrip("/")
    host = host_of(trigger.git_url)
    if trigger.kind == "github":
        return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
    return f"https://{host}/api/v4"


@dataclass(frozen=True)
class StatusPost:
    url: str
    headers: dict[str, str]
    json: dict[str, str]


def status_post(trigger: StoredTrigger, token: str, record: BuildRecord, state: str,
                target_url: str) -> StatusPost:
    commit = str((record.trigger_metadata or {}).get("commit") or "")
    context = str(trigger.spec.get("status_context") or "slipway")
    github_state, gitlab_state = FORGE_STATES[state]
    description = f"{DESCRIPTIONS[state]}: {record.namespace}/{record.repository}"
    path = repository_path(trigger.git_url)
    if trigger.kind == "github":
        return StatusPost(
            url=f"{api_base(trigger)}/repos/{path}/statuses/{commit}",
            headers={"Authorization": f"Bearer {token}",
                     "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28"},
            json={"state": github_state, "target_url": target_url,
                  "description": description, "context": context})
    ref = str((record.trigger_metadata or {}).get("ref") or "")
    for prefix in ("refs/heads/", "refs/tags/"):
        ref = ref.removeprefix(prefix)
    return StatusPost(
        url=f"{api_base(trigger)}/projects/{quote(path, safe='')}/statuses/{commit}",
        headers={"PRIVATE-TOKEN": token},
        json={"state": gitlab_state, "target_url": target_url, "description": description,
              "name": context, "ref": ref})


class StatusPostFailed(Exception):
    """The forge did not take the status; the message holds no token."""


async def post_status(client: httpx.AsyncClient, post: StatusPost) -> None:
    try:
        response = await client.post(post.url, headers=post.headers, json=post.json,
                                     timeout=POST_TIMEOUT)
    except httpx.HTTPError as exc:
        raise StatusPostFailed(f"POST {post.url}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise StatusPostFailed(f"POST {post.url}: HTTP {response.status_code} "
                               f"{response.text[:300]}")
