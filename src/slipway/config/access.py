"""ACCESS: how slipway's own API treats its clients' credentials (docs/access.md):
repeated failed authentications from one client are slowed down. slipway addition."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from slipway.config_fields import field


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
