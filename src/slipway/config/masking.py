"""The effective configuration as plain data: defaults filled in, secrets masked,
YAML key names and the BUILD_MANAGER list form (what `slipway config check` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from slipway.config.models import AppConfig
from slipway.config_fields import MASK, mask_url


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return mask_url(value)  # DB_URI, proxies: user:password@host
    return value


def effective_config(config: AppConfig) -> dict[str, Any]:
    """`config` as a dict ready for yaml.safe_dump, with every secret replaced by *****."""
    plain = _plain(config)
    mode = plain.pop("build_manager_mode")
    manager = plain.pop("manager")
    out: dict[str, Any] = {"FEATURE_BUILD_SUPPORT": plain.pop("FEATURE_BUILD_SUPPORT")}
    out["BUILD_MANAGER"] = [mode, manager] if manager is not None else [mode]
    out.update(plain)
    return out
