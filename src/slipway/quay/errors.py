"""The error Quay mode stops with: what is wrong, with the config key it comes from."""

from __future__ import annotations


class QuayModeError(Exception):
    """slipway cannot serve Quay's builds as configured; the message names the key."""
