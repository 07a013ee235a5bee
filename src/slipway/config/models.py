"""The configuration models. Field names are the YAML keys of Quay's config.yaml
(docs/configuration.md); keys marked as slipway additions say so in their description."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from slipway.config.access import AccessConfig
from slipway.config.build_limits import BuildLimitsConfig
from slipway.config.data_lifecycle import LogArchiveConfig, RetentionConfig
from slipway.config.executors import (
    EXECUTOR_KINDS,
    EC2ExecutorConfig,
    ExecutorConfig,
    ExecutorConfigBase,
    KubernetesExecutorConfig,
    LocalExecutorConfig,
)
from slipway.config.quay import (
    BuildLogsRedis,
    BuildLogsRedisConfig,
    ConnectionArgs,
    StorageConfig,
)
from slipway.config.signing import SigningConfig
from slipway.config.tracing import TracingConfig
from slipway.config_fields import (
    HostPort,
    field,
    mask_url,
    problem,
    show,
    split_host_port,
)
from slipway.domain.loopback import is_loopback_registry

__all__ = [
    "EXECUTOR_KINDS",
    "AppConfig",
    "EC2ExecutorConfig",
    "ExecutorConfig",
    "ExecutorConfigBase",
    "KubernetesExecutorConfig",
    "LocalExecutorConfig",
    "ManagerConfig",
    "RedisConfig",
    "RegistryCredential",
]

_MODEL_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class RedisConfig(BaseModel):
    """BUILD_MANAGER[1].ORCHESTRATOR: the Redis orchestrator (absent: in-memory)."""

    model_config = _MODEL_CONFIG

    REDIS_HOST: str = field(example="quay-redis.example.com")
    REDIS_PORT: int = field(6379, example=6379, ge=1, le=65535)
    REDIS_PASSWORD: SecretStr | None = field(None, example="redis-password")
    REDIS_DB: int = field(0, example=0, ge=0)
    REDIS_SSL: bool = field(False, example=True)
    REDIS_CA_CERT: Path | None = field(None, example="/conf/stack/redis-ca.crt")
    REDIS_CERT_AND_KEY: Path | None = field(None, example="/conf/stack/redis-client.pem")
    REDIS_SKIP_KEYSPACE_EVENT_SETUP: bool = field(
        False,
        example=True,
        description="true: do not set notify-keyspace-events at start (managed Redis)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_prefix_here(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(key, str) and key.endswith("_PREFIX"):
                    raise problem(
                        "a key ending in _PREFIX does not belong inside ORCHESTRATOR; move "
                        f"it one level up: BUILD_MANAGER[1].ORCHESTRATOR_PREFIX: {value}",
                        key=key,
                    )
        return data


class _Conflict:
    """Marks EXECUTORS given together with the legacy EXECUTOR/EXECUTOR_CONFIG."""


class ManagerConfig(BaseModel):
    """BUILD_MANAGER[1]: one build manager's settings."""

    model_config = _MODEL_CONFIG

    ALLOWED_WORKER_COUNT: int = field(
        1, example=1, ge=1, description="build workers this manager runs at once"
    )
    ORCHESTRATOR_PREFIX: str = field(
        "", example="buildman/production/", description="prefix of every orchestrator (Redis) key"
    )
    ORCHESTRATOR: RedisConfig | None = field(
        None,
        example={"REDIS_HOST": "quay-redis.example.com"},
        description="Redis orchestrator; absent: in-memory (one manager process only)",
    )
    REDIS_SKIP_KEYSPACE_EVENT_SETUP: bool = field(
        False,
        example=True,
        description="overrides ORCHESTRATOR.REDIS_SKIP_KEYSPACE_EVENT_SETUP when given here",
    )
    EXECUTORS: list[ExecutorConfig] = field(
        example=[{"EXECUTOR": "local"}],
        min_length=1,
        description="ordered list of executors (legacy: EXECUTOR + EXECUTOR_CONFIG)",
    )
    QUAY_QUEUE_WATCH_INTERVAL: float = field(
        0.05, example=0.05, unit="seconds", ge=0,
        description="slipway, Quay mode: how often the manager reads the highest id of "
        "Quay's queueitem to start a new build at once (one index-only query each); 0: "
        "only the queue's poll every second")
    JOB_REGISTRATION_TIMEOUT: int = field(30, example=30, unit="seconds", ge=1)
    MACHINE_MAX_TIME: int = field(7200, example=7200, unit="seconds", ge=1)
    NAMESPACE_LIMITS: dict[str, Annotated[int, Field(ge=1)]] = field(
        default_factory=dict,
        example={"team-a": 2},
        description="slipway: {namespace: max concurrent builds}",
    )
    HEARTBEAT_EXPIRY: int = field(
        60,
        example=60,
        unit="seconds",
        ge=1,
        description="slipway: seconds without heartbeat before a running build is retried",
    )
    RETRY_AFTER: int = field(
        10,
        example=10,
        unit="seconds",
        ge=0,
        description="slipway: seconds before a retried build may be scheduled again",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_executor(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ({"EXECUTOR", "EXECUTOR_CONFIG"} & data.keys()):
            return data
        data = dict(data)
        kind = data.pop("EXECUTOR", None)
        legacy = data.pop("EXECUTOR_CONFIG", None)
        if "EXECUTORS" in data:
            data["EXECUTORS"] = _Conflict()
            return data
        entry = dict(legacy) if isinstance(legacy, dict) else {} if legacy is None else legacy
        if isinstance(entry, dict) and kind is not None:
            entry["EXECUTOR"] = kind
        data["EXECUTORS"] = [entry]
        return data

    @field_validator("EXECUTORS", mode="before")
    @classmethod
    def _one_form(cls, value: Any) -> Any:
        if isinstance(value, _Conflict):
            raise problem(
                "give either EXECUTORS (a list) or the legacy EXECUTOR + "
                "EXECUTOR_CONFIG, not both; move the legacy executor into EXECUTORS "
                "as one more entry"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ManagerConfig:
        seen: dict[str, int] = {}
        for index, executor in enumerate(self.EXECUTORS):
            first = seen.setdefault(executor.NAME, index)
            if first != index:
                raise problem(
                    f"{executor.NAME!r} is already the NAME of EXECUTORS[{first}]; each "
                    f"executor needs a unique NAME; write e.g. NAME: {executor.NAME}-{index}",
                    key=f"EXECUTORS[{index}].NAME",
                )
        if self.ORCHESTRATOR is not None:
            if "REDIS_SKIP_KEYSPACE_EVENT_SETUP" in self.model_fields_set:
                self.ORCHESTRATOR.REDIS_SKIP_KEYSPACE_EVENT_SETUP = (
                    self.REDIS_SKIP_KEYSPACE_EVENT_SETUP
                )
            else:
                self.REDIS_SKIP_KEYSPACE_EVENT_SETUP = (
                    self.ORCHESTRATOR.REDIS_SKIP_KEYSPACE_EVENT_SETUP
                )
        return self


class RegistryCredential(BaseModel):
    """Push credentials for one registry host (REGISTRY_CREDENTIALS.<host>)."""

    model_config = _MODEL_CONFIG

    username: str = field(example="robot")
    password: SecretStr = field(example="robot-password")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "slipway"


class _BadBuildManager:
    """Marks a BUILD_MANAGER value of neither accepted form."""

    def __init__(self, value: Any) -> None:
        self.value = value


DEFAULT_MANAGER: dict[str, Any] = {"EXECUTORS": [{"EXECUTOR": "local"}]}
BUILD_MANAGER_FORMS = (
    "BUILD_MANAGER: [ephemeral, {EXECUTORS: [{EXECUTOR: local}]}] (a list: "
    "the word ephemeral, then the manager config), or "
    "BUILD_MANAGER: [external] (this process runs no manager)"
)


class AppConfig(BaseModel):
    """The whole config.yaml. Keys Quay uses for other things are ignored."""

    model_config = _MODEL_CONFIG

    FEATURE_BUILD_SUPPORT: bool = field(
        True, example=True, description="false: the API refuses new builds; no manager runs"
    )
    build_manager_mode: Literal["ephemeral", "external"] = field(
        "ephemeral",
        example="ephemeral",
        description="BUILD_MANAGER[0]: ephemeral (this process runs a manager) or external",
    )
    manager: ManagerConfig | None = field(
        None, example=DEFAULT_MANAGER, description="BUILD_MANAGER[1]; None when external"
    )
    SERVER_HOSTNAME: str = field(
        "localhost:8080",
        example="quay.example.com",
        description="the registry host name; default push target",
    )
    BUILDMAN_HOSTNAME: str = field(
        "",
        example="quay-builder.example.com:443",
        description="address workers dial for gRPC; default: SERVER_HOSTNAME's host, with the "
        "port of GRPC_LISTEN_ADDRESS",
    )
    DATA_DIR: Path = field(
        default_factory=_default_data_dir,
        example="/var/lib/slipway",
        description="slipway: SQLite file, signing keys, uploaded contexts",
    )
    DB_URI: str = field(
        "",
        example="postgresql://slipway:secret@db.example.com/slipway",
        description="slipway: SQLAlchemy URL; default sqlite in DATA_DIR",
    )
    API_LISTEN_ADDRESS: HostPort = field(
        "127.0.0.1:8700",
        example="0.0.0.0:8700",
        description="slipway: host:port the HTTP API (REST, live logs, web UI) listens on",
    )
    GRPC_LISTEN_ADDRESS: HostPort = field(
        "127.0.0.1:50051",
        example="0.0.0.0:50051",
        description="slipway: host:port the gRPC BuildManager service (workers) listens on",
    )
    PUBLIC_URL: str = field(
        "",
        example="https://builds.example.com",
        description="slipway: base URL of the HTTP API as workers and CLIs reach it; default "
        "http:// + API_LISTEN_ADDRESS (0.0.0.0 read as 127.0.0.1)",
    )
    BUILDMAN_TLS_CERT: Path | None = field(
        None,
        example="/conf/stack/buildman.crt",
        description="slipway: certificate of the gRPC listener (with BUILDMAN_TLS_KEY)",
    )
    BUILDMAN_TLS_KEY: Path | None = field(
        None,
        example="/conf/stack/buildman.key",
        description="slipway: private key of the gRPC listener (with BUILDMAN_TLS_CERT)",
    )
    ALLOWED_REGISTRIES: list[str] = field(
        default_factory=list,
        example=["registry.example.com:5000"],
        description="slipway: registries besides SERVER_HOSTNAME a build may push to",
    )
    INSECURE_REGISTRIES: list[str] = field(
        default_factory=list,
        example=["127.0.0.1:5000"],
        description="slipway: registries reached over plain HTTP",
    )
    LOOPBACK_REGISTRIES: bool = field(
        False,
        example=True,
        description="slipway: true: builds may also push to any registry on loopback "
        "(127.0.0.0/8, ::1, localhost, any port), reached over plain HTTP as docker does; "
        "on in the embedded default (no config file), off in a config file",
    )
    REGISTRY_CREDENTIALS: dict[str, RegistryCredential] = field(
        default_factory=dict,
        example={"registry.example.com": {"username": "robot", "password": "secret"}},
        description="slipway: push credentials for non-Quay registries, by host",
    )
    BUILD_SECRETS: dict[str, dict[str, SecretStr]] = field(
        default_factory=dict,
        example={"acme": {"npm_token": "secret"}, "acme/web": {"api_key": "secret"}},
        description="slipway: build secrets (RUN --mount=type=secret,id=ID) by namespace or "
        "namespace/repository, {SCOPE: {ID: value}}; a repository's and then the submitted "
        "ones win over the namespace's",
    )
    BUILD_SECRETS_KEY: SecretStr | None = field(
        None,
        example="<urlsafe base64 of 32 random bytes>",
        description="slipway: Fernet key encrypting build secrets in the database; default "
        "DATA_DIR/keys/build-secrets.key, made on first start (managers that share the "
        "database but not DATA_DIR need the same key)",
    )
    BUILD_UPLOAD_MAX_BYTES: int = field(
        1 << 30,
        example=1 << 30,
        unit="bytes",
        ge=1,
        description="slipway: largest uploaded build archive",
    )
    BUILD_CONTEXT_MAX_BYTES: int = field(
        4 << 30,
        example=4 << 30,
        unit="bytes",
        ge=1,
        description="slipway: largest unpacked build context",
    )
    BUILD_CONTEXT_MAX_FILES: int = field(
        100_000,
        example=100_000,
        ge=1,
        description="slipway: most files in an unpacked build context",
    )
    NAMESPACE_MAX_QUEUED_BUILDS: int = field(
        1000, example=1000, ge=1, description="slipway: most builds one namespace may have waiting"
    )
    TRIGGER_WEBHOOK_MAX_BYTES: int = field(
        5 << 20,
        example=5 << 20,
        unit="bytes",
        ge=1024,
        description="slipway: largest webhook delivery a build trigger takes (413 beyond)",
    )
    TRIGGER_BASE_IMAGE_INTERVAL: int = field(
        900,
        example=900,
        unit="seconds",
        ge=10,
        description="slipway: how often triggers that watch their base images look at the "
        "FROM images' digests",
    )
    # --- a build's time limits (domain/build_limits.py) ---
    BUILD_TIMEOUTS: BuildLimitsConfig = field(
        default_factory=BuildLimitsConfig,
        example={"DEFAULT": "1h", "NAMESPACES": {"team": "30m"}},
        description="slipway: how long a build may run when it asks for no timeout, "
        "{DEFAULT, NAMESPACES: {namespace: duration}}; at most MACHINE_MAX_TIME; "
        "none: MACHINE_MAX_TIME",
    )
    QUEUE_TTL: BuildLimitsConfig = field(
        default_factory=BuildLimitsConfig,
        example={"DEFAULT": "1h", "NAMESPACES": {"team": "10m"}},
        description="slipway: how long a build may wait in the queue before it starts, "
        "{DEFAULT, NAMESPACES: {namespace: duration}}; then it ends expired; none: no limit",
    )

    SIGNING: SigningConfig | None = field(
        None,
        example={"KEY_FILE": "/etc/slipway/signing/cosign.key",
                 "PASSPHRASE_FILE": "/etc/slipway/signing/passphrase"},
        description="slipway: sign every pushed image and attach its provenance and SBOM "
        "(docs/signing.md); none: builds are not signed",
    )
    LOG_ARCHIVE: LogArchiveConfig = field(
        default_factory=LogArchiveConfig,
        example={"BUCKET": "slipway-logs", "PREFIX": "logarchive/"},
        description="slipway: where finished build logs are archived (docs/data-lifecycle.md); "
        "default the directory DATA_DIR/ + LOG_ARCHIVE_PATH",
    )
    TRACING: TracingConfig = field(
        default_factory=TracingConfig,
        example={"OTLP_ENDPOINT": "http://otel-collector:4317", "OTLP_INSECURE": True},
        description="slipway: where build traces are exported besides the build "
        "(docs/traces.md); default: kept with the build only",
    )
    RETENTION: RetentionConfig = field(
        default_factory=RetentionConfig,
        example={"DEFAULT_DAYS": 90, "NAMESPACES": {"team": 30}, "KEEP_LAST": 10},
        description="slipway: how long build records, archived logs and uploaded contexts "
        "are kept (docs/data-lifecycle.md)",
    )
    ACCESS: AccessConfig = field(
        default_factory=AccessConfig,
        example={"FAILED_AUTH_LIMIT": 10, "FAILED_AUTH_WINDOW": 60},
        description="slipway: how repeated failed authentications are slowed down "
        "(docs/access.md)",
    )

    # Quay's own keys, read in Quay mode (config/quay.py; defaults are Quay's)
    DB_CONNECTION_ARGS: ConnectionArgs = field(
        default_factory=dict,
        example={"sslmode": "verify-full", "sslrootcert": "/conf/stack/database.pem"},
        description="database driver arguments (Quay's pool settings, e.g. threadlocals, "
        "are ignored)",
    )
    BUILDLOGS_REDIS: BuildLogsRedis = field(
        default_factory=BuildLogsRedisConfig,
        example={"host": "quay-redis.example.com", "port": 6379, "password": "secret"},
        description="Quay mode: the Redis holding Quay's build logs (builds/<uuid>/logs)",
    )
    PREFERRED_URL_SCHEME: Literal["http", "https"] = field(
        "http", example="https", description="scheme of Quay's URLs (user files, links)"
    )
    DISTRIBUTED_STORAGE_CONFIG: StorageConfig = field(
        default_factory=dict,
        example={"default": ["S3Storage", {"s3_bucket": "quay", "storage_path": "/registry"}]},
        description="Quay's storage locations: {location: [DriverName, {parameters}]}",
    )
    DISTRIBUTED_STORAGE_PREFERENCE: list[str] = field(
        default_factory=list, example=["default"], description="Quay's preferred locations"
    )
    USERFILES_LOCATION: str = field(
        "local_us", example="default", description="storage location of uploaded contexts"
    )
    USERFILES_PATH: str = field(
        "userfiles/", example="userfiles/", description="their path in that location"
    )
    LOG_ARCHIVE_LOCATION: str = field(
        "local_us", example="default", description="storage location of archived build logs"
    )
    LOG_ARCHIVE_PATH: str = field(
        "logarchive/", example="logarchive/", description="their path in that location; "
        "slipway: also the default directory under DATA_DIR and the default LOG_ARCHIVE.PREFIX"
    )
    DATABASE_SECRET_KEY: SecretStr | None = field(
        None,
        example="40157269433064266822674401740626984898972632465622168464725100311621640999470",
        description="Quay mode: decrypts Quay's build tokens and deploy keys",
    )
    DOCKERFILE_BUILD_QUEUE_NAME: str = field(
        "dockerfilebuild", example="dockerfilebuild", description="Quay's build queue name"
    )
    NOTIFICATION_QUEUE_NAME: str = field(
        "notification", example="notification", description="Quay's notification queue name"
    )
    REGISTRY_STATE: Literal["normal", "readonly"] = field(
        "normal", example="normal", description="readonly: Quay starts no builds"
    )
    SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD: int | None = field(
        100, example=100, ge=0, description="failed builds in a row that disable a trigger"
    )
    SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD: int | None = field(
        5, example=5, ge=0, description="internal errors in a row that disable a trigger"
    )
    QUAY_USERFILES_SOURCE: Literal["quay", "mount"] = field(
        "quay",
        example="quay",
        description="slipway: where workers fetch contexts kept in LocalStorage: quay "
        "(Quay's /userfiles/ URL) or mount (slipway serves the storage path, mounted here)",
    )

    @model_validator(mode="before")
    @classmethod
    def _split_build_manager(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "build_manager_mode" in data or "manager" in data:
            return data
        data = dict(data)
        value = data.pop("BUILD_MANAGER", None)
        if value is None:
            data["build_manager_mode"], data["manager"] = "ephemeral", DEFAULT_MANAGER
        elif isinstance(value, list) and len(value) == 2 and value[0] == "ephemeral":
            data["build_manager_mode"], data["manager"] = value
        elif isinstance(value, list) and value == ["external"]:
            data["build_manager_mode"], data["manager"] = "external", None
        else:
            data["build_manager_mode"] = _BadBuildManager(value)
        return data

    @field_validator("build_manager_mode", mode="before")
    @classmethod
    def _build_manager_form(cls, value: Any) -> Any:
        if isinstance(value, _BadBuildManager):
            shown = value.value if isinstance(value.value, str) else show(value.value)
            if isinstance(value.value, list) and value.value[:1] == ["ephemeral"]:
                shown = f"a list of {len(value.value)} item(s) starting with ephemeral"
            raise problem(f"{shown} is not a build manager setting; write {BUILD_MANAGER_FORMS}")
        return value

    @field_validator("DATA_DIR", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str) else value

    @field_validator("DB_URI")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        from slipway.store.database_url import db_uri_problem

        problem_text = db_uri_problem(value, mask_url(value))
        if problem_text is not None:
            raise problem(problem_text)
        return value

    @field_validator("BUILD_SECRETS")
    @classmethod
    def _build_secrets(
        cls, value: dict[str, dict[str, SecretStr]]
    ) -> dict[str, dict[str, SecretStr]]:
        from slipway.build_secrets import InvalidSecret, check_secrets
        from slipway.domain.names import InvalidName, check_namespace, check_repository

        for scope, secrets in value.items():
            namespace, _, repository = scope.partition("/")
            try:
                check_namespace(namespace)
                if repository:
                    check_repository(repository)
                check_secrets({k: v.get_secret_value() for k, v in secrets.items()},
                              f"BUILD_SECRETS[{scope!r}]")
            except InvalidName as exc:
                raise problem(f"{scope!r} is not a namespace or namespace/repository: "
                              f"{exc}") from None
            except InvalidSecret as exc:
                raise problem(f"{scope!r}: {exc}") from None
        return value

    @field_validator("PUBLIC_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise problem(
                f"{value!r} is not an http(s) URL; write e.g. "
                "PUBLIC_URL: https://builds.example.com"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _fill_defaults(self) -> AppConfig:
        if self.build_manager_mode == "ephemeral" and self.manager is None:
            raise problem(
                f"ephemeral needs a manager config; write {BUILD_MANAGER_FORMS}",
                key="BUILD_MANAGER",
            )
        if (self.BUILDMAN_TLS_CERT is None) != (self.BUILDMAN_TLS_KEY is None):
            missing = "BUILDMAN_TLS_KEY" if self.BUILDMAN_TLS_KEY is None else "BUILDMAN_TLS_CERT"
            raise problem(
                "BUILDMAN_TLS_CERT and BUILDMAN_TLS_KEY go together; give both "
                "(TLS on the gRPC listener) or neither (plain gRPC)",
                key=missing,
            )
        if not self.BUILDMAN_HOSTNAME:
            self.BUILDMAN_HOSTNAME = split_host_port(self.SERVER_HOSTNAME)[0]
        if not self.DB_URI:
            self.DB_URI = f"sqlite:///{self.DATA_DIR}/slipway.db"
        if not self.PUBLIC_URL:
            host, port = split_host_port(self.API_LISTEN_ADDRESS)
            host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
            self.PUBLIC_URL = f"http://{host}:{port}"
        return self

    @model_validator(mode="after")
    def _build_timeouts_within_machine_max_time(self) -> AppConfig:
        # a default no build could reach would read as a promise the executor breaks
        if self.manager is None:
            return self
        longest = self.manager.MACHINE_MAX_TIME
        for key, seconds in self.BUILD_TIMEOUTS.values_by_key("BUILD_TIMEOUTS").items():
            if seconds > longest:
                raise problem(
                    f"{seconds} s is longer than BUILD_MANAGER[1].MACHINE_MAX_TIME "
                    f"({longest} s), the longest a build runs here; lower it to at most "
                    f"{longest}, or raise MACHINE_MAX_TIME",
                    key=key,
                )
        return self

    @property
    def allowed_registries(self) -> list[str]:
        """The registries named in the config that builds may push to: SERVER_HOSTNAME
        first, then ALLOWED_REGISTRIES (and, with LOOPBACK_REGISTRIES, any on loopback)."""
        return [self.SERVER_HOSTNAME, *self.ALLOWED_REGISTRIES]

    def registry_allowed(self, registry: str) -> bool:
        return registry in self.allowed_registries or (
            self.LOOPBACK_REGISTRIES and is_loopback_registry(registry))

    def registry_is_plain_http(self, registry: str) -> bool:
        """INSECURE_REGISTRIES, and with LOOPBACK_REGISTRIES any registry on loopback."""
        return registry in self.INSECURE_REGISTRIES or (
            self.LOOPBACK_REGISTRIES and is_loopback_registry(registry))

    @property
    def buildman_address(self) -> str:
        """host:port workers dial: BUILDMAN_HOSTNAME, with GRPC_LISTEN_ADDRESS's port when
        BUILDMAN_HOSTNAME has none."""
        host, port = split_host_port(self.BUILDMAN_HOSTNAME)
        if port is not None:
            return self.BUILDMAN_HOSTNAME
        return f"{host}:{split_host_port(self.GRPC_LISTEN_ADDRESS)[1]}"
