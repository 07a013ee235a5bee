"""What a registered worker is handed (the BuildPack), put together in one place.

The build record gives what the user asked for (tags, Dockerfile, build arguments,
options); the backend gives what only it knows (`PackParts`): where the context is,
what the worker logs in to the registry with, a trigger's git repository, the build's
secrets. The result is plain data; the gRPC servicer only copies it into the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from slipway.store.records import BuildRecord


class BuildPackUnavailable(Exception):
    """The backend cannot complete this build's pack (its token cannot be decrypted, its
    secrets were encrypted with another key...); the registration is refused with the
    message."""


@dataclass(frozen=True)
class GitPackage:
    """A repository the worker clones at `sha` instead of downloading a package."""

    url: str
    sha: str
    private_key: str = field(repr=False)


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class WorkerAccess:
    """The backend's credentials for one build: the registry login (`push_username` and
    `push_password`, or Quay's build token as `push_token` and `pull_token`) and, for a
    trigger with a deploy key, the repository to clone."""

    push_username: str = ""
    push_password: str = field(default="", repr=False)
    push_token: str = field(default="", repr=False)
    pull_token: str = field(default="", repr=False)
    git_package: GitPackage | None = None


class PackParts(Protocol):
    """What a backend adds to the build record's fields."""

    def package_url(self, record: BuildRecord) -> str:
        """Where the worker downloads the context ("" when it clones `git_package`). It
        may raise: it is asked before the job is marked running, so the worker's retry
        can register again."""

    async def access(self, record: BuildRecord) -> WorkerAccess:
        """BuildPackUnavailable when the build cannot have them."""

    async def secrets(self, record: BuildRecord) -> dict[str, str]:
        """The build's secrets ({id: value}); BuildPackUnavailable when they cannot be
        read."""


@dataclass(frozen=True)
class PackSigning:
    """BuildPack.Signing (docs/signing.md): the key travels as the build secrets do, in
    the pack only, masked in every report."""

    private_key: str = field(repr=False)
    passphrase: str = field(repr=False)
    required: bool
    sbom: bool
    build_arg_values: bool
    builder_id: str
    build_id: str


@dataclass(frozen=True)
class BuildPack:
    """The BuildPack message's fields (docs/protocol.md). `git_package`, when set, takes
    the place of `package_url` (they are a oneof)."""

    job_token: str = field(repr=False)
    package_url: str
    git_package: GitPackage | None
    context: str
    dockerfile_path: str
    repository: str
    registry: str
    tags: list[str]
    target: str
    push_username: str
    push_password: str = field(repr=False)
    push_token: str = field(repr=False)
    pull_token: str = field(repr=False)
    base_image: Login | None  # the login for pulling the base image
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    secrets: Mapping[str, str] = field(repr=False)
    no_cache: bool
    pull: bool
    platforms: list[str]
    signing: PackSigning | None = None
    # not sent in the message: the build's trace is named in the call's metadata
    build_id: str = ""


async def assemble_build_pack(parts: PackParts, record: BuildRecord, *, job_token: str,
                              package_url: str, signing: PackSigning | None = None
                              ) -> BuildPack:
    """The pack of `record`'s registered job; `package_url` is `parts.package_url(record)`,
    asked before the job was marked running."""
    access = await parts.access(record)
    options = record.options or {}
    # only builds given secrets pay the read
    secrets = await parts.secrets(record) if options.get("secrets") else {}
    pulls = record.pull_credentials
    return BuildPack(
        build_id=record.id,
        job_token=job_token,
        package_url=package_url,
        git_package=access.git_package,
        context=record.context or record.subdirectory or "",
        dockerfile_path=record.dockerfile_path or "Dockerfile",
        repository=record.full_repository,
        registry=record.registry,
        tags=record.tags or ["latest"],
        target=record.target or "",
        push_username=access.push_username,
        push_password=access.push_password,
        push_token=access.push_token,
        pull_token=access.pull_token,
        base_image=Login(pulls.get("username", ""), pulls.get("password", ""))
        if pulls else None,
        build_args=dict(record.build_args or {}),
        labels={name: str(value) for name, value in (options.get("labels") or {}).items()},
        secrets=secrets,
        no_cache=bool(options.get("no_cache")),
        pull=bool(options.get("pull")),
        platforms=[str(p) for p in options.get("platforms") or []],
        signing=signing,
    )
