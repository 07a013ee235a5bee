"""Quay's rules for what the worker of a Quay build is handed (Quay's
EphemeralBuilderManager.start_job and BuildJob): the context and Dockerfile path as Quay
extracts them from the `repositorybuild` row (used when slipway makes its record of the
build, quay/store.py), and where the worker downloads the context. The BuildPack itself
is assembled by manager/build_pack.py from that record and backends/quay.py's parts."""

from __future__ import annotations

import posixpath
from typing import Any, Protocol

from slipway.quay.errors import QuayModeError
from slipway.store.records import BuildRecord


class UserFileUrls(Protocol):
    def get_file_url(self, resource_key: str, expires_in: int = 300) -> str:
        ...


def _slash_join(*parts: str) -> str:
    """Quay's util.slash_join: one leading and one trailing slash of each part dropped."""
    def trimmed(part: str) -> str:
        part = part[1:] if part.startswith("/") else part
        return part[:-1] if part.endswith("/") else part

    return "/".join(trimmed(p) for p in parts)


def dockerfile_args(job_config: dict[str, Any]) -> tuple[str, str]:
    """(context, dockerfile_path) as Quay's BuildJob.extract_dockerfile_args gives them:
    with both build_subdir and context set, the Dockerfile's path relative to the
    context, unless that climbs out of it (then build_subdir split in two).

    Quay takes a relative context relative to its working directory; here it is taken
    relative to `/`, which gives the same answer for the contexts Quay's UI writes."""
    dockerfile_path = job_config.get("build_subdir") or ""
    context = job_config.get("context") or ""
    if dockerfile_path and context:
        absolute = _slash_join("", dockerfile_path)
        relative = posixpath.relpath(absolute, posixpath.join("/", context))
        if ".." in relative:
            head, tail = posixpath.split(dockerfile_path)
            return head, tail
        dockerfile_path = relative
    return context, dockerfile_path


def record_package_url(record: BuildRecord, userfiles: UserFileUrls | None) -> str:
    """`package_url` of slipway's record of a Quay build (quay/store.py new_build_of), as
    Quay's BuildJob.get_build_package_url gives it: "" for a trigger with a deploy key
    (the worker clones its repository), else archive_url, else a 5-minute URL of the
    uploaded context (resource_key; basename only) in user-file storage. QuayModeError
    when the build has none of them: there is nothing to build."""
    if (record.trigger or {}).get("deploy_key"):
        return ""
    if record.archive_url:
        return record.archive_url
    if record.resource_key and userfiles is not None:
        return userfiles.get_file_url(record.resource_key, expires_in=300)
    raise QuayModeError(
        f"build {record.id} has no package to build: no archive_url, no uploaded context "
        "(resource_key) and no trigger deploy key"
    )
