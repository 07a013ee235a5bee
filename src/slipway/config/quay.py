"""The value types of Quay's own config.yaml keys that a build manager reads beside
Quay (docs/quay-contract.md, "Config keys read"): the build-logs Redis, the storage that holds
uploaded build contexts, the key that decrypts Quay's tokens and deploy keys. The keys
themselves are fields of AppConfig (models.py). Defaults are Quay's (Quay's config.py).

Here only their form is checked. What needs the outside world (the storage driver of
USERFILES_LOCATION, whether BUILDLOGS_REDIS answers) is checked when Quay mode starts
(slipway/quay/), with messages naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

from slipway.config_fields import field, problem, show
from slipway.secret import reveal

# storage driver parameters whose values are secrets (masked in `config check`)
STORAGE_SECRET_PARAMS = frozenset(
    {"s3_access_key", "s3_secret_key", "access_key", "secret_key", "cloudfront_key_id",
     "swift_password", "azure_account_key", "sas_token", "password"}
)
# DB_CONNECTION_ARGS keys that belong to Quay's peewee pool, not to the database driver
PEEWEE_CONNECTION_ARGS = frozenset(
    {"threadlocals", "autorollback", "stale_timeout", "max_connections", "timeout",
     "autoconnect"}
)

# Quay's own top-level keys that look like ours: never reported as typos of them
QUAY_OWN_KEYS = frozenset(
    {
        "ACTION_LOG_ARCHIVE_LOCATION",
        "ACTION_LOG_ARCHIVE_PATH",
        "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS",
        "USER_EVENTS_REDIS",
        "BUILDLOGS_REDIS_HOSTNAME",
        "BUILDLOGS_OPTIONS",
        "BUILDLOGS_MODULE_AND_CLASS",
        "REPLICATION_QUEUE_NAME",
        "CHUNK_CLEANUP_QUEUE_NAME",
        "NAMESPACE_GC_QUEUE_NAME",
        "REPOSITORY_GC_QUEUE_NAME",
        "EXPORT_ACTION_LOGS_QUEUE_NAME",
        "SECSCAN_V4_NOTIFICATION_QUEUE_NAME",
        "DB_CONNECTION_POOLING",
        "DB_READ_REPLICAS",
        "DB_TRANSACTION_FACTORY",
        "SECRET_KEY",
        "BUILDER_DB_HOST_OVERRIDE",
        "SERVER_HOSTNAME_OVERRIDE",
        "REGISTRY_TITLE",
        "REGISTRY_TITLE_SHORT",
    }
)


class BuildLogsRedisConfig(BaseModel):
    """BUILDLOGS_REDIS: the Redis where Quay's UI reads build logs (`builds/<uuid>/logs`).
    Quay hands the mapping to redis-py as keyword arguments, so other redis-py
    arguments are passed on as given."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    host: str = field("localhost", example="quay-redis.example.com")
    port: int = field(6379, example=6379, ge=1, le=65535)
    password: SecretStr | None = field(None, example="redis-password")
    username: str | None = field(None, example="quay")
    db: int = field(0, example=0, ge=0)
    ssl: bool = field(False, example=True)
    ssl_ca_certs: Path | None = field(None, example="/conf/stack/redis-ca.crt")
    ssl_certfile: Path | None = field(None, example="/conf/stack/redis-client.crt")
    ssl_keyfile: Path | None = field(None, example="/conf/stack/redis-client.key")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def redis_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for redis.asyncio.Redis (the password in clear)."""
        kwargs: dict[str, Any] = dict(self.model_extra or {})
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = reveal(value)
            if value is None:
                continue
            if isinstance(value, Path):
                value = str(value)
            kwargs[name] = value
        return kwargs


def _buildlogs_redis(value: Any) -> Any:
    # Quay falls back to its default when the key is given empty
    return {} if value is None else value


BuildLogsRedis = Annotated[BuildLogsRedisConfig, BeforeValidator(_buildlogs_redis)]


def _storage_entries(value: Any) -> Any:
    """DISTRIBUTED_STORAGE_CONFIG: {location: [DriverName, {parameters}]}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise problem(
            f"{show(value)} is not a mapping of storage locations; write e.g. "
            "DISTRIBUTED_STORAGE_CONFIG: {default: [LocalStorage, {storage_path: "
            "/datastorage/registry}]}"
        )
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for location, entry in value.items():
        where = str(location)
        if (
            not isinstance(entry, list | tuple)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or not isinstance(entry[1], dict | None)
        ):
            raise problem(
                f"{show(entry)} is not a storage location; each location is a list of "
                f"the driver's name and its parameters, e.g. {where}: [S3Storage, "
                "{s3_bucket: quay, storage_path: /registry}]",
                key=where,
            )
        driver, params = entry[0], dict(entry[1] or {})
        for name, param in params.items():
            if name in STORAGE_SECRET_PARAMS and isinstance(param, str | int):
                params[name] = SecretStr(str(param))
        entries[where] = (driver, params)
    return entries


StorageConfig = Annotated[dict[str, tuple[str, dict[str, Any]]], BeforeValidator(_storage_entries)]


def plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """Storage parameters with their secrets in clear (for the storage client)."""
    return {
        name: reveal(value) if isinstance(value, SecretStr) else value
        for name, value in params.items()
    }


def _connection_args(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {
            name: SecretStr(str(arg)) if "password" in str(name) and arg is not None else arg
            for name, arg in value.items()
        }
    return value


ConnectionArgs = Annotated[dict[str, Any], BeforeValidator(_connection_args)]


def driver_connect_args(args: dict[str, Any]) -> dict[str, Any]:
    """DB_CONNECTION_ARGS as connection arguments of the database driver: Quay's peewee
    pool settings dropped, libpq's (sslmode, sslrootcert, connect_timeout, ...) kept."""
    return plain_params(
        {name: value for name, value in args.items() if name not in PEEWEE_CONNECTION_ARGS}
    )
