"""Whether a push builds (branch, tag and path filters), and the tags it pushes (the tag
templates). Plain functions of the trigger's settings and the push."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from slipway.triggers.webhooks import Push

_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]+")


def matches(pattern: str, value: str) -> bool:
    """A glob ('release-*', 'feature/**'), or a regular expression between slashes."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.search(pattern[1:-1], value) is not None
    return fnmatch.fnmatchcase(value, pattern)


def _any(patterns: Iterable[str], value: str) -> bool:
    return any(matches(p, value) for p in patterns)


def why_not(settings: Mapping[str, Any], push: Push) -> str | None:
    """None when the push builds; else why not (shown in the trigger's deliveries)."""
    if push.is_tag:
        tags = settings.get("tags") or []
        if not _any(tags, push.name):
            return f"tag {push.name!r} matches none of the tag filters {tags}"
    elif push.ref.startswith("refs/heads/"):
        branches = settings.get("branches") or []
        if not _any(branches, push.name):
            return f"branch {push.name!r} matches none of the branch filters {branches}"
    else:
        return f"{push.ref!r} is neither a branch nor a tag"
    paths = settings.get("paths") or []
    if (paths and not push.is_tag and push.changed is not None
            and not any(_any(paths, f) for f in push.changed)):
        shown = sorted(push.changed)[:5]
        return (f"no changed file ({', '.join(shown) or 'none'}"
                f"{', ...' if len(push.changed) > 5 else ''}) matches the path "
                f"filters {paths}")
    return None


def tag_safe(value: str) -> str:
    """A branch name as an image tag: 'feature/x' -> 'feature-x'."""
    tag = _NOT_IN_TAG.sub("-", value).strip("-.") or "x"
    return tag[:128]


def image_tags(templates: Iterable[str], push: Push, default_branch: str) -> list[str]:
    """The templates filled in for this push; one naming {tag} on a branch push (or
    {branch} on a tag push) gives nothing, `latest` only the default branch's push."""
    branch = None if push.is_tag else push.name
    tag = push.name if push.is_tag else None
    out: list[str] = []
    for template in templates:
        if template == "latest":
            if branch is not None and branch == default_branch:
                out.append("latest")
            continue
        if ("{branch}" in template and branch is None) or ("{tag}" in template and tag is None):
            continue
        value = (template.replace("{sha:7}", push.commit[:7]).replace("{sha}", push.commit)
                 .replace("{branch}", tag_safe(branch or "")).replace("{tag}",
                                                                      tag_safe(tag or "")))
        value = tag_safe(value)
        if value not in out:
            out.append(value)
    return out
