"""What the worker of a Quay build is handed (Quay's EphemeralBuilderManager.start_job and
BuildManagerServicer.RegisterBuildJob): where its context is, the Dockerfile, where to
push and the credentials, all from the `repositorybuild` row and the queue item's body."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Protocol

from slipway.quay.builds import QuayBuild
from slipway.quay.encryption import FieldEncrypter
from slipway.quay.errors import QuayModeError
from slipway.store.records import BuildRecord


class UserFileUrls(Protocol):
    def get_file_url(self, resource_key: str, expires_in: int = 300) -> str:
        ...


class NoBuildPackage(ValueError):
    """The build has neither a context to download nor a trigger's git repository; Quay's
    manager fails such a build with `internalerror`."""


@dataclass(frozen=True)
class GitPackage:
    url: str
    sha: str
    private_key: str = field(repr=False)


@dataclass(frozen=True)
class QuayBuildPack:
    """The BuildPack message's fields. `git_package` takes precedence over
    `package_url` (they are a oneof)."""

    package_url: str
    git_package: GitPackage | None
    context: str
    dockerfile_path: str
    repository: str
    registry: str
    tag_names: list[str]
    base_image_username: str
    base_image_password: str = field(repr=False)
    pull_token: str = field(repr=False)
    push_token: str = field(repr=False)


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


def package_url(build: QuayBuild, userfiles: UserFileUrls) -> str:
    """BuildJob.get_build_package_url: job_config's archive_url, else a 5-minute URL of
    the uploaded context (resource_key) in user-file storage, else ""."""
    archive_url = build.job_config.get("archive_url")
    if archive_url:
        return str(archive_url)
    if not build.resource_key:
        return ""
    return userfiles.get_file_url(build.resource_key, expires_in=300)


def git_package(build: QuayBuild, encrypter: FieldEncrypter) -> GitPackage | None:
    """The trigger's repository at its commit, for a trigger with a deploy key."""
    private_key = build.deploy_key(encrypter)
    if private_key is None:
        return None
    return GitPackage(url=str(build.trigger_metadata.get("git_url", "") or ""),
                      sha=build.commit_sha, private_key=private_key)


def record_package_url(record: BuildRecord, userfiles: UserFileUrls | None) -> str:
    """`package_url` of slipway's record of a Quay build (quay/store.py new_build_of):
    "" for a trigger with a deploy key (the worker clones its repository)."""
    if (record.trigger or {}).get("deploy_key"):
        return ""
    if record.archive_url:
        return record.archive_url
    if record.resource_key and userfiles is not None:
        return userfiles.get_file_url(record.resource_key, expires_in=300)
    raise QuayModeError(
        f"build {record.id} has no package to build: no archive_url and no uploaded "
        "context (resource_key)"
    )


def build_pack(
    build: QuayBuild,
    pull_credentials: dict[str, str] | None,
    *,
    registry: str,
    encrypter: FieldEncrypter,
    userfiles: UserFileUrls,
) -> QuayBuildPack:
    """The BuildPack of `build`; `pull_credentials` come from its queue item's body,
    `registry` is SERVER_HOSTNAME. Both tokens are the build's access token."""
    context, dockerfile_path = dockerfile_args(build.job_config)
    token = build.access_token(encrypter)
    git = git_package(build, encrypter)
    url = "" if git is not None else package_url(build, userfiles)
    if git is None and not url:
        raise NoBuildPackage(
            f"build {build.uuid} has no package to build: no archive_url, no uploaded "
            "context (resource_key) and no trigger deploy key"
        )
    creds = pull_credentials or {}
    return QuayBuildPack(
        package_url=url,
        git_package=git,
        context=context,
        dockerfile_path=dockerfile_path,
        repository=build.repository,
        registry=registry,
        tag_names=build.tags,
        base_image_username=str(creds.get("username", "") or ""),
        base_image_password=str(creds.get("password", "") or ""),
        pull_token=token,
        push_token=token,
    )
