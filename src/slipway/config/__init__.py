"""Configuration: pydantic models of Quay's config.yaml keys; load, validate, mask."""

from slipway.config.errors import ConfigError
from slipway.config.loader import LoadedConfig, default_config, load_config, parse_config
from slipway.config.masking import effective_config
from slipway.config.models import (
    AppConfig,
    EC2ExecutorConfig,
    ExecutorConfig,
    ExecutorConfigBase,
    KubernetesExecutorConfig,
    LocalExecutorConfig,
    ManagerConfig,
    RedisConfig,
    RegistryCredential,
)

__all__ = [
    "AppConfig",
    "ConfigError",
    "EC2ExecutorConfig",
    "ExecutorConfig",
    "ExecutorConfigBase",
    "KubernetesExecutorConfig",
    "LoadedConfig",
    "LocalExecutorConfig",
    "ManagerConfig",
    "RedisConfig",
    "RegistryCredential",
    "default_config",
    "effective_config",
    "load_config",
    "parse_config",
]
