"""ACCESS: how slipway's own API treats its clients' credentials (docs/access.md):
repeated failed authentications from one client are slowed down; OIDC, when given, signs
people in with an OpenID provider and maps its groups to namespace roles. slipway
addition."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from slipway.config_fields import field, problem
from slipway.domain.durations import InvalidDuration, parse_duration

Role = Literal["read", "write", "admin"]


class OidcConfig(BaseModel):
    """ACCESS.OIDC: sign-in with an OpenID provider (authorization code with PKCE). The
    provider redirects back to PUBLIC_URL + /auth/oidc/callback: register that URI with
    the client."""

    model_config = ConfigDict(extra="ignore")

    ISSUER: str = field(
        ..., example="https://sso.example.com/realms/main",
        description="the provider's issuer URL (its /.well-known/openid-configuration is "
        "read from there)")
    CLIENT_ID: str = field(..., example="slipway", description="the client's id")
    CLIENT_SECRET: SecretStr = field(
        ..., example="secret", description="the client's secret (masked, never logged)")
    SCOPES: list[str] = field(
        default_factory=lambda: ["openid", "email", "profile"],
        example=["openid", "email", "profile", "groups"],
        description="the scopes asked for; openid is always among them")
    USERNAME_CLAIM: str = field(
        "email", example="email",
        description="the claim that names the user in listings and the audit log (else "
        "preferred_username, else sub)")
    GROUPS_CLAIM: str = field(
        "groups", example="groups",
        description="the claim holding the user's groups (a list, or one string)")
    GROUP_ROLES: dict[str, dict[str, Role]] = field(
        default_factory=dict, example={"platform": {"*": "admin"}, "web-devs": {"web": "write"}},
        description='{group: {namespace or "*": read | write | admin}}: a user gets, on '
        "each namespace, the highest role of their groups; a user in no listed group is "
        "refused")
    SESSION_LIFETIME: int = field(
        "8h", example="8h", description="how long a sign-in lasts (90m, 8h, or seconds); "
        "then the user signs in again")

    @field_validator("SESSION_LIFETIME", mode="before")
    @classmethod
    def _lifetime(cls, value: object) -> int:
        try:
            return parse_duration(value)
        except InvalidDuration as exc:
            raise problem(str(exc)) from None

    @field_validator("ISSUER")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise problem(f"{value!r} is not a URL; give the issuer, e.g. "
                          "https://sso.example.com/realms/main")
        return value.rstrip("/")


class AccessConfig(BaseModel):
    """ACCESS: after FAILED_AUTH_LIMIT failed authentications from one client address
    within FAILED_AUTH_WINDOW seconds, that client's requests are answered 429 with
    Retry-After until the oldest of them is older than the window."""

    model_config = ConfigDict(extra="ignore")

    FAILED_AUTH_LIMIT: int = field(
        10, example=10, ge=1,
        description="failed authentications one client address may make within "
        "FAILED_AUTH_WINDOW before it is slowed down (429)")
    FAILED_AUTH_WINDOW: float = field(
        60, example=60, unit="seconds", gt=0,
        description="the window FAILED_AUTH_LIMIT counts in")
    OIDC: OidcConfig | None = field(
        None, example={"ISSUER": "https://sso.example.com", "CLIENT_ID": "slipway",
                       "CLIENT_SECRET": "secret", "GROUP_ROLES": {"devs": {"web": "write"}}},
        description="single sign-on with an OpenID provider; none: tokens only")
