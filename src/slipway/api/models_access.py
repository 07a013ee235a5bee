"""Bodies of the access routes (docs/access.md): tokens and the audit log."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from slipway.domain.durations import InvalidDuration, parse_duration
from slipway.domain.names import InvalidName, check_namespace

RoleName = Literal["read", "write", "admin"]
_DAYS = re.compile(r"^\s*(\d+)\s*d\s*$", re.IGNORECASE)
# a printable name, as a person reads it in a listing and in the audit log
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
MAX_SCOPES = 100
LONGEST_LIFETIME_S = 10 * 366 * 86400


def _err(message: str) -> PydanticCustomError:
    return PydanticCustomError("slipway", "{message}", {"message": message})


def lifetime_seconds(value: object) -> int:
    """`30d`, `12h`, `90m`, or a number of seconds."""
    if isinstance(value, str) and (days := _DAYS.match(value)):
        seconds = int(days.group(1)) * 86400
        if seconds < 1:
            raise InvalidDuration(f"{value!r} is no time at all; write e.g. 30d or 12h")
        return seconds
    return parse_duration(value)


class TokenRequest(BaseModel):
    """A new token: its name, its scopes, and how long it lives (none: until revoked)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what the token is for, e.g. `ci-web`; 1 to 100 "
                      "printable characters", examples=["ci-web"])
    scopes: dict[str, RoleName] = Field(
        description='{namespace or "*": "read" | "write" | "admin"}: at most what the '
        "token making it holds; only an admin of a namespace may grant admin on it",
        examples=[{"team": "write"}])
    expires_in: str | int | None = Field(
        None, description="how long the token lives: `30d`, `12h`, `90m` or seconds; "
        "none: until revoked (a token that itself expires must give one that ends no "
        "later)", examples=["30d"])

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or not value.strip():
            raise _err("name: give 1 to 100 printable characters, e.g. ci-web")
        return value.strip()

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise _err('scopes: give at least one, e.g. {"team": "read"}')
        if len(value) > MAX_SCOPES:
            raise _err(f"scopes: {len(value)} given; at most {MAX_SCOPES}")
        for namespace in value:
            if namespace == "*":
                continue
            try:
                check_namespace(namespace)
            except InvalidName as exc:
                raise _err(f"scopes: {exc}") from None
        return value

    @field_validator("expires_in")
    @classmethod
    def _expires_in(cls, value: str | int | None) -> str | int | None:
        if value is None:
            return None
        try:
            seconds = lifetime_seconds(value)
        except InvalidDuration as exc:
            raise _err(f"expires_in: {exc}; or 30d") from None
        if seconds > LONGEST_LIFETIME_S:
            raise _err("expires_in: at most 3660d (ten years); leave it out for a token "
                       "that lives until it is revoked")
        return value

    @property
    def lifetime(self) -> int | None:
        return None if self.expires_in is None else lifetime_seconds(self.expires_in)


class TokenOut(BaseModel):
    """A token as listed: never the token itself."""

    id: str = Field(description="what the token is revoked by")
    name: str
    scopes: dict[str, str]
    created_by: str | None = Field(description="who made it (none: the server, at its "
                                   "first start)")
    created: float = Field(description="UNIX time")
    expires: float | None = Field(description="UNIX time; none: until revoked")
    last_used: float | None = Field(description="UNIX time, to the minute; none: never")
    revoked: float | None = Field(description="UNIX time; none: not revoked")
    state: Literal["active", "expired", "revoked"]


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown this once, never again")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class AuditEntryOut(BaseModel):
    id: int = Field(description="increasing: the order in which the entries were recorded")
    at: float = Field(description="UNIX time")
    actor: str = Field(description="who: a token's name or a signed-in user")
    action: str = Field(description="e.g. build.start, build.cancel, token.create")
    namespace: str | None
    target: str | None = Field(description="the build's or token's id")
    source: str | None = Field(description="the client's address as the server saw it")
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(
        description="pass as `after` for the next page; none: this was the last")
