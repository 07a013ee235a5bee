"""BUILD_TIMEOUTS and QUEUE_TTL: a build's time limits by namespace
(domain/build_limits.py says what each limit does)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

from slipway.config_fields import field, problem
from slipway.domain.durations import InvalidDuration, parse_duration
from slipway.domain.names import InvalidName, check_namespace


def _duration(value: Any) -> int:
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise problem(str(exc)) from None


# seconds, written as a number of seconds or a duration text (20m, 1h30m)
Duration = Annotated[int, BeforeValidator(_duration)]


class BuildLimitsConfig(BaseModel):
    """One limit: its DEFAULT and each namespace's own value."""

    model_config = ConfigDict(extra="ignore")

    DEFAULT: Duration | None = field(
        None, example="1h", description="the limit of every namespace not in NAMESPACES"
    )
    NAMESPACES: dict[str, Duration] = field(
        default_factory=dict, example={"team": "30m"}, description="{namespace: limit}"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand_and_known_keys(cls, data: Any) -> Any:
        if isinstance(data, int | str) and not isinstance(data, bool):
            return {"DEFAULT": data}  # `QUEUE_TTL: 1h` is every namespace's
        if isinstance(data, dict):
            for key in data:
                if key not in ("DEFAULT", "NAMESPACES"):
                    # a misspelt key would otherwise leave a limit silently unset
                    raise problem(
                        f"{key!r} is not a key here; write DEFAULT: 1h and/or NAMESPACES: "
                        "{team: 30m}"
                    )
        return data

    @field_validator("NAMESPACES")
    @classmethod
    def _namespace_names(cls, value: dict[str, int]) -> dict[str, int]:
        for namespace in value:
            try:
                check_namespace(namespace)
            except InvalidName as exc:
                raise problem(f"{namespace!r} is not a namespace: {exc}") from None
        return value

    def values_by_key(self, key: str) -> dict[str, int]:
        """Every value given, by its YAML path under `key` (for the messages)."""
        given = {f"{key}.NAMESPACES.{ns}": seconds for ns, seconds in self.NAMESPACES.items()}
        if self.DEFAULT is not None:
            given = {f"{key}.DEFAULT": self.DEFAULT, **given}
        return given
