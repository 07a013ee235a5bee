"""The server's BuildTracing as TRACING configures it."""

from __future__ import annotations

from slipway.config.models import AppConfig
from slipway.store.interfaces import Store
from slipway.tracing.build_tracing import BuildTracing


def tracing_from_config(config: AppConfig, store: Store) -> BuildTracing:
    settings = config.TRACING
    endpoint = settings.OTLP_ENDPOINT
    return BuildTracing(
        store.traces,
        otlp_endpoint=endpoint,
        otlp_headers={k: v.get_secret_value() for k, v in settings.OTLP_HEADERS.items()},
        otlp_insecure=settings.OTLP_INSECURE or bool(endpoint and endpoint.startswith("http://")),
        service_name=settings.SERVICE_NAME,
    )
