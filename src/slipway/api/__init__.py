"""HTTP API (Quay's build routes), auth, live logs (SSE), metrics and health."""

from slipway.api.app import create_app
from slipway.api.auth import bootstrap_admin_token, create_token
from slipway.api.filedrop import context_url

__all__ = ["bootstrap_admin_token", "context_url", "create_app", "create_token"]
