"""What a trigger is configured with (docs/triggers.md): the git repository, the refs and
paths it builds, how it builds, and its credentials; checked when it is created or changed,
with a message that says what is wrong and how to fix it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from slipway.domain.names import InvalidName, check_build_arg_name
from slipway.domain.platforms import InvalidPlatform, normalize_platforms

Kind = Literal["github", "gitlab", "generic"]
DEFAULT_TEMPLATES = ["{branch}", "{tag}", "{sha:7}", "latest"]
TEMPLATE_FIELDS = ("{branch}", "{tag}", "{sha}", "{sha:7}")
# scp-like SSH address: git@host:path
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//).+$")
URL_SCHEMES = ("https://", "http://", "ssh://", "git://")
# the credentials a trigger may hold: never returned by the API, never logged
CREDENTIALS = ("ssh_key", "token", "token_user", "status_token")


def check_git_url(url: str) -> str:
    url = url.strip()
    if not (url.startswith(URL_SCHEMES) or SCP_LIKE.match(url)):
        # never echo what may be a password in it
        shown = re.sub(r"//[^/@]*@", "//***@", url[:200])
        raise ValueError(
            f"git_url: {shown!r} is not a git repository address; give an HTTPS URL "
            "(https://github.com/team/app.git) or an SSH one (git@github.com:team/app.git, "
            "ssh://git@host/team/app.git)")
    if url.startswith(("https://", "http://")) and "@" in url.split("/", 3)[2]:
        raise ValueError("git_url: put no user or token in the URL; give the token as "
                         "`token` (it is stored encrypted and never shown)")
    return url


def check_pattern(pattern: str, where: str) -> str:
    """A glob, or a regular expression between slashes (/^release-[0-9]+$/)."""
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            re.compile(pattern[1:-1])
        except re.error as exc:
            raise ValueError(f"{where}: {pattern!r} is not a valid regular expression: "
                             f"{exc}") from None
    elif not pattern:
        raise ValueError(f"{where}: an empty pattern matches nothing; remove it")
    return pattern


def check_template(template: str) -> str:
    rest = template
    for name in TEMPLATE_FIELDS:
        rest = rest.replace(name, "x")
    if "{" in rest or "}" in rest:
        raise ValueError(
            f"tag_templates: {template!r} has an unknown field; use {', '.join(TEMPLATE_FIELDS)}"
            " (e.g. 'v{tag}', '{branch}-{sha:7}') or the word latest")
    if not template or not re.fullmatch(r"[A-Za-z0-9_.-]+", rest):
        raise ValueError(
            f"tag_templates: {template!r} would not make a valid image tag (letters, digits, "
            "'_', '.' and '-', up to 128)")
    return template


class Schedule(BaseModel):
    """A scheduled rebuild of `ref` (the default branch when empty)."""

    model_config = ConfigDict(extra="forbid")
    cron: str = Field(description="five-field cron expression, UTC (e.g. '0 4 * * 1')")
    ref: str = Field("", description="branch to rebuild; default: the default branch")
    pull: bool = Field(False, description="pull the base images anew (--pull)")
    no_cache: bool = Field(False, description="build without the layer cache (--no-cache)")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from slipway.triggers.schedule import check_cron

        return check_cron(v)


class TriggerSettings(BaseModel):
    """Everything of a trigger but its name, kind, URL and credentials."""

    model_config = ConfigDict(extra="forbid")
    branches: list[str] = Field(default_factory=lambda: ["*"],
                                description="branches built (globs or /regex/); [] for none")
    tags: list[str] = Field(default_factory=lambda: ["*"],
                            description="git tags built (globs or /regex/); [] for none")
    paths: list[str] = Field(default_factory=list,
                             description="build only when a changed file matches one "
                             "(globs); [] builds every push")
    default_branch: str = Field("main", description="the branch `latest` is pushed for "
                                "(a GitHub or GitLab delivery names its own)")
    dockerfile_path: str = Field("Dockerfile", description="relative to the context")
    context: str = Field("", description="the context directory in the repository")
    tag_templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES))
    registry: str | None = Field(None, description="default: SERVER_HOSTNAME")
    build_args: dict[str, str] = Field(default_factory=dict)
    platforms: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    watch_base_images: bool = Field(False, description="build when a FROM image's "
                                    "digest moves")
    status_api_url: str | None = Field(
        None, description="where commit statuses go: GitHub's API (https://api.github.com, "
        "or https://HOST/api/v3 for GitHub Enterprise) or GitLab's (https://HOST/api/v4); "
        "default: from git_url; statuses are posted only with a status_token")
    status_context: str = Field("slipway", description="the status's context (name)")

    @field_validator("branches", "tags", "paths")
    @classmethod
    def _patterns(cls, v: list[str], info: Any) -> list[str]:
        return [check_pattern(p, info.field_name) for p in v]

    @field_validator("tag_templates")
    @classmethod
    def _templates(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("tag_templates: give at least one, e.g. ['{branch}', 'latest']")
        return [check_template(t) for t in v]

    @field_validator("build_args")
    @classmethod
    def _args(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            try:
                check_build_arg_name(name)
            except InvalidName as exc:
                raise ValueError(f"build_args: {exc}") from None
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        try:
            return normalize_platforms(v) if v else []
        except InvalidPlatform as exc:
            raise ValueError(f"platforms: {exc}") from None

    @field_validator("status_api_url")
    @classmethod
    def _api(cls, v: str | None) -> str | None:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError(f"status_api_url: {v!r} is not an http(s) URL")
        return v.rstrip("/") if v else v


class TriggerIn(TriggerSettings):
    """A new trigger (POST), or the whole of a changed one (PUT)."""

    name: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Kind = Field(description="github, gitlab or generic: which webhooks it takes")
    git_url: str
    enabled: bool = True
    ssh_key: SecretStr | None = Field(None, description="a deploy key (private, OpenSSH)")
    token: SecretStr | None = Field(None, description="an HTTPS token to clone with")
    token_user: str | None = Field(None, description="the user name sent with the token; "
                                   "default x-access-token (GitHub), oauth2 (GitLab)")
    status_token: SecretStr | None = Field(None, description="a token allowed to post "
                                           "commit statuses")
    rotate_webhook_secret: bool = Field(False, description="PUT: make a new webhook secret")

    @field_validator("git_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_git_url(v)

    @model_validator(mode="after")
    def _key_fits(self) -> TriggerIn:
        key = self.ssh_key.get_secret_value() if self.ssh_key else ""
        if key and "PRIVATE KEY" not in key:
            raise ValueError("ssh_key: not a private key; give the deploy key's private part "
                             "(-----BEGIN OPENSSH PRIVATE KEY----- ...)")
        if key and not is_ssh(self.git_url):
            raise ValueError("ssh_key: git_url is not an SSH address (git@host:path or "
                             "ssh://); give the SSH URL, or a token for HTTPS")
        if self.token and is_ssh(self.git_url):
            raise ValueError("token: git_url is an SSH address; a token is for HTTPS URLs "
                             "(give ssh_key for SSH)")
        return self

    def settings(self) -> dict[str, Any]:
        return TriggerSettings.model_validate(
            self.model_dump(include=set(TriggerSettings.model_fields))).model_dump(mode="json")


def is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or bool(SCP_LIKE.match(url))
