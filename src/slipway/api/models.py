"""Request and response bodies (pydantic), which also make the OpenAPI document."""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slipway.build_secrets import InvalidSecret, check_secrets
from slipway.domain.build_limits import SUBMITTED
from slipway.domain.durations import InvalidDuration, parse_duration
from slipway.domain.names import InvalidName, check_build_arg_name, check_tag
from slipway.domain.platforms import InvalidPlatform, normalize_platforms

TARGET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# docker's label keys are free-form; refuse what no runtime takes on its command line
LABEL_KEY_RE = re.compile(r"^[^\s=\x00]{1,255}$")


def _err(message: str) -> PydanticCustomError:
    return PydanticCustomError("slipway", "{message}", {"message": message})


def package_path(value: str, field: str) -> str:
    """A path inside the package, normalised: '' for its root, no '..', no backslashes.

    A leading '/' is Quay's way of writing the package root ('/sub' = 'sub')."""
    if "\x00" in value or "\\" in value:
        raise _err(f"{field} {value!r} contains a NUL or a backslash; use '/' between parts")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _err(
            f"{field} {value!r} leaves the build context ('..'); give a path inside it, "
            "e.g. 'docker/Dockerfile'"
        )
    return "/".join(parts)


TIMEOUT_DESCRIPTION = (
    "slipway: how long the build may run once its worker started, as seconds or a "
    "duration (\"20m\", \"1h30m\"); at most the server's MACHINE_MAX_TIME (more is "
    "refused with a 400 naming both). Default: BUILD_TIMEOUTS for the namespace, else "
    "MACHINE_MAX_TIME. A build past it is stopped and ends internalerror, not retried"
)
QUEUE_TTL_DESCRIPTION = (
    "slipway: how long the build may wait in the queue before it starts, as seconds or "
    "a duration (\"10m\"). Default: QUEUE_TTL for the namespace, else no limit. A build "
    "still waiting then ends expired"
)


def _duration_field(value: object) -> int | None:
    """Whole seconds (the error is prefixed with the field's name by api/errors.py)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise _err(str(exc)) from None


def limit_options(timeout: int | None, queue_ttl: int | None) -> dict[str, Any]:
    """The build's `options` entries of the limits given with it."""
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = {"seconds": timeout, "set_by": SUBMITTED}
    if queue_ttl is not None:
        options["queue_ttl"] = {"seconds": queue_ttl, "set_by": SUBMITTED}
    return options


class PullCredentials(BaseModel):
    """Registry login for pulling base images. Stored; never shown in any response."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=255)
    password: SecretStr = Field(min_length=1)


class BuildRequest(BaseModel):
    """Quay's RepositoryBuildRequest plus slipway's build_args, target and registry."""

    model_config = ConfigDict(extra="forbid")
    _resolved: tuple[str, str] = PrivateAttr(default=("", "Dockerfile"))

    file_id: str | None = Field(None, description="id of a context uploaded via /filedrop/")
    archive_url: str | None = Field(None, description="http(s) URL of the context archive")
    docker_tags: list[str] | None = Field(None, description='default ["latest"]')
    subdirectory: str | None = Field(None, description="context directory with a Dockerfile")
    dockerfile_path: str | None = Field(None, description="Dockerfile path, relative to `context`")
    context: str | None = Field(None, description="directory of the package used as context")
    pull_robot: str | None = Field(None, max_length=255)
    pull_credentials: PullCredentials | None = None
    build_args: dict[str, str] | None = None
    target: str | None = None
    registry: str | None = Field(None, description="registry to push to (default SERVER_HOSTNAME)")
    no_cache: bool = Field(False, description="slipway: build every step anew (no layer cache)")
    sbom: bool = Field(True, description="slipway: false: attach no SBOM to this build's "
                       "images (with SIGNING; docs/signing.md)")
    pull: bool = Field(
        False, description="slipway: pull base images even when present; a failed pull fails"
    )
    labels: dict[str, str] | None = Field(None, description="slipway: image labels")
    platforms: list[str] | None = Field(
        None,
        description="slipway: os/arch[/variant] to build for, e.g. [\"linux/amd64\", "
        "\"linux/arm64\"]; several: one manifest list pushed under every tag and its digest "
        "reported (docs/multi-arch.md). Default: the executor's PLATFORMS, else the worker "
        "host's own platform",
    )
    secrets: dict[str, SecretStr] | None = Field(
        None,
        description="slipway: build secrets {id: value} for RUN --mount=type=secret,id=ID; "
        "over the repository's configured ones. Never shown: the build lists only the ids "
        "(options.secrets)",
    )
    timeout: int | str | None = Field(None, description=TIMEOUT_DESCRIPTION)
    queue_ttl: int | str | None = Field(None, description=QUEUE_TTL_DESCRIPTION)

    @field_validator("timeout", "queue_ttl", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> int | None:
        return _duration_field(v)

    @field_validator("file_id")
    @classmethod
    def _file_id(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return str(uuid.UUID(v))
        except ValueError:
            raise _err(f"{v!r} is not a file id returned by POST /api/v1/filedrop/") from None

    @field_validator("archive_url")
    @classmethod
    def _archive_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _err(f"{v!r} is not an http:// or https:// URL")
        return v

    @field_validator("docker_tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise _err("give at least one tag, e.g. [\"latest\"]")
        for tag in v:
            try:
                check_tag(tag)
            except InvalidName as exc:
                raise _err(str(exc)) from None
        dupes = sorted({t for t in v if v.count(t) > 1})
        if dupes:
            raise _err(f"tag {dupes[0]!r} is given more than once; list each tag once")
        return v

    @field_validator("build_args")
    @classmethod
    def _build_args(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name in v or {}:
            try:
                check_build_arg_name(name)
            except InvalidName as exc:
                raise _err(str(exc)) from None
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name, value in (v or {}).items():
            if not LABEL_KEY_RE.match(name):
                raise _err(f"label name {name!r} is not valid: 1-255 characters, no spaces, "
                           "'=' or NUL (e.g. org.opencontainers.image.source)")
            if "\x00" in value or "\n" in value:
                raise _err(f"label {name!r}: its value contains a NUL or a newline")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise _err('give at least one platform, e.g. ["linux/amd64"], or leave it out')
        try:
            return normalize_platforms(v)
        except InvalidPlatform as exc:
            raise _err(str(exc)) from None

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        try:
            check_secrets({k: s.get_secret_value() for k, s in (v or {}).items()})
        except InvalidSecret as exc:
            raise _err(str(exc)) from None
        return v

    @property
    def secret_values(self) -> dict[str, str]:
        return {k: s.get_secret_value() for k, s in (self.secrets or {}).items()}

    @property
    def options(self) -> dict[str, Any]:
        """What the record's `options` keeps: only what was asked for."""
        options: dict[str, Any] = {}
        if self.no_cache:
            options["no_cache"] = True
        if self.pull:
            options["pull"] = True
        if not self.sbom:
            options["sbom"] = False
        if self.labels:
            options["labels"] = dict(self.labels)
        if self.platforms:
            options["platforms"] = list(self.platforms)
        options.update(limit_options(_seconds(self.timeout), _seconds(self.queue_ttl)))
        return options

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and not TARGET_RE.match(v):
            raise _err(f"{v!r} is not a valid build stage name")
        return v

    @field_validator("subdirectory", "dockerfile_path", "context")
    @classmethod
    def _paths(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            package_path(v, info.field_name)  # raises when invalid
        return v

    @model_validator(mode="after")
    def _one_source(self) -> BuildRequest:
        if (self.file_id is None) == (self.archive_url is None):
            raise _err(
                "file_id, archive_url: give exactly one of them (file_id for an uploaded "
                "context, archive_url for a context fetched over http/https)"
            )
        self._resolved = self._context_and_dockerfile()
        return self

    def _context_and_dockerfile(self) -> tuple[str, str]:
        """Quay's rules: `subdirectory` is the context holding a file named Dockerfile;
        `dockerfile_path` without `context` makes its directory the context. A
        `dockerfile_path` starting with '/' is package-rooted (Quay's UI sends
        '/sub/Dockerfile'); otherwise it is relative to the context."""
        if self.context is not None:
            context = package_path(self.context, "context")
        else:
            context = package_path(self.subdirectory or "", "subdirectory")
        if self.dockerfile_path is None:
            return context, "Dockerfile"
        path = package_path(self.dockerfile_path, "dockerfile_path")
        if not path:
            raise _err("dockerfile_path: must name a file, e.g. 'Dockerfile'")
        if self.context is None and self.subdirectory is None:
            return posixpath.dirname(path), posixpath.basename(path)
        if not self.dockerfile_path.startswith("/"):
            return context, path
        if context and not path.startswith(context + "/"):
            raise _err(
                f"dockerfile_path {self.dockerfile_path!r} is outside the context "
                f"{'/' + context!r}; put the Dockerfile inside the context directory"
            )
        return context, path[len(context) + 1 :] if context else path

    @property
    def resolved_paths(self) -> tuple[str, str]:
        """(context directory in the package, Dockerfile path relative to it)."""
        return self._resolved


def _seconds(value: int | str | None) -> int | None:
    # the validators made every given value whole seconds
    return None if value is None else int(value)


class RebuildRequest(BaseModel):
    """slipway: what a rebuild may change (the body is optional). Left out: the old
    build's own timeout and queue TTL if it was given them, else the configured ones."""

    model_config = ConfigDict(extra="forbid")

    timeout: int | str | None = Field(None, description=TIMEOUT_DESCRIPTION)
    queue_ttl: int | str | None = Field(None, description=QUEUE_TTL_DESCRIPTION)

    @field_validator("timeout", "queue_ttl", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> int | None:
        return _duration_field(v)

    @property
    def options(self) -> dict[str, Any]:
        return limit_options(_seconds(self.timeout), _seconds(self.queue_ttl))


class Repository(BaseModel):
    namespace: str
    name: str


class BuildOut(BaseModel):
    """A build as Quay returns it, plus slipway's fields."""

    id: str
    phase: str
    started: str = Field(description="RFC 2822 date")
    display_name: str
    status: dict[str, Any]
    subdirectory: str
    dockerfile_path: str
    context: str
    tags: list[str]
    manual_user: str | None
    trigger: dict[str, Any] | None
    trigger_metadata: dict[str, Any] | None
    resource_key: str | None
    pull_robot: str | None
    repository: Repository
    error: str | None
    archive_url: str | None
    image_digest: str | None
    retries_remaining: int
    executor: str | None
    completed: str | None = Field(description="RFC 2822 date, null while running")
    attempts: list[dict[str, Any]]
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="slipway: no_cache, pull, labels, platforms as requested; secrets: the "
        "ids of the build's secrets (their values are never shown); timeout, queue_ttl: "
        "the limits that apply, {seconds, set_by} (set_by: \"submission\" or the config "
        "key, e.g. BUILD_TIMEOUTS.NAMESPACES.team)",
    )


class BuildList(BaseModel):
    builds: list[BuildOut]


class LogEntryOut(BaseModel):
    message: str
    type: Literal["command", "phase", "error"] | None = Field(
        None, description="absent for plain output"
    )
    data: dict[str, Any]


class LogsOut(BaseModel):
    start: int
    total: int
    logs: list[LogEntryOut]


class FileDropRequest(BaseModel):
    mimeType: str = Field(min_length=1, max_length=255, examples=["application/gzip"])


class FileDropOut(BaseModel):
    file_id: str
    url: str = Field(description="PUT the archive or Dockerfile here (no other auth needed)")


class ErrorOut(BaseModel):
    status: int
    error_message: str
    error_type: str
    title: str
    detail: str


class TokenInfo(BaseModel):
    name: str
    scopes: dict[str, str] = Field(description='{namespace or "*": "read" | "write" | "admin"}')


class InfoOut(BaseModel):
    """slipway: what GET /api/v1/slipway/info tells a client."""

    version: str
    token: TokenInfo
    build_support: bool = Field(description="false: this server refuses new builds")
    registries: list[str] = Field(description="registries a build may push to")
    loopback_registries: bool = Field(
        False, description="true: also any registry on loopback (LOOPBACK_REGISTRIES)")


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, bool]
