"""TRACING: where build traces go besides the build itself (docs/traces.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from slipway.config_fields import field


class TracingConfig(BaseModel):
    """TRACING: every build's trace is kept with the build; with OTLP_ENDPOINT it is also
    exported over OTLP (gRPC) to a collector (Jaeger, Tempo, an OpenTelemetry
    Collector)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    OTLP_ENDPOINT: str | None = field(
        None, example="http://otel-collector:4317",
        description="the OTLP gRPC endpoint spans are exported to; none: not exported")
    OTLP_INSECURE: bool = field(
        False, example=True,
        description="true: plaintext gRPC to OTLP_ENDPOINT (an http:// endpoint is "
        "plaintext anyway)")
    OTLP_HEADERS: dict[str, SecretStr] = field(
        default_factory=dict, example={"authorization": "Bearer token"},
        description="headers sent with every export (e.g. the collector's token); "
        "masked in `slipway config check`")
    SERVICE_NAME: str = field(
        "slipway-manager", example="slipway-manager",
        description="the manager's service.name in exported spans (the worker's is "
        "slipway-worker)")

    @field_validator("OTLP_ENDPOINT")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError("OTLP_ENDPOINT must be host:port, http://host:port or "
                             "https://host:port (OTLP over gRPC)")
        return value
