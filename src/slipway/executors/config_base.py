"""The keys every executor accepts ("all executors" in docs/configuration.md). Each
executor's own model (`local/config.py`, `kubernetes/config.py`, `ec2/config.py`) adds its
keys and says which EXECUTOR values it validates and which class runs them;
executors/registry.py lists the models, and the config package builds the EXECUTORS
entry from that list."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slipway import __version__
from slipway.config_fields import field
from slipway.domain.platforms import InvalidPlatform, normalize_platforms
from slipway.images import WORKER_IMAGE as DEFAULT_WORKER_IMAGE

ContainerRuntime = Literal["docker", "podman", "buildah"]


class ExecutorConfigBase(BaseModel):
    """Keys every executor accepts ("All executors" in docs/configuration.md)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    # "module:Class" of the executor that runs this kind, imported only when one is created:
    # the cloud clients it needs are heavy, and most processes that read a config start none
    IMPLEMENTATION: ClassVar[str] = ""
    # EXECUTOR values that are Quay's names for a kind of this model
    QUAY_ALIASES: ClassVar[frozenset[str]] = frozenset()

    EXECUTOR: str
    NAME: str = field(
        "",
        example="kubernetes-primary",
        description="unique name of this executor; default: the EXECUTOR value",
    )
    SETUP_TIME: int = field(
        500, example=500, unit="seconds", ge=1, description="time a started worker has to register"
    )
    MINIMUM_RETRY_THRESHOLD: int = field(
        0,
        example=1,
        ge=0,
        description="use this executor only while retries remaining >= this value; 0: no limit",
    )
    NAMESPACE_WHITELIST: list[str] | None = field(
        None, example=["team-a", "team-b"], description="only these namespaces may use it"
    )
    STAGED_ROLLOUT: float | None = field(
        None,
        example=0.25,
        ge=0.0,
        le=1.0,
        description="fraction 0..1 of namespaces (by sha256 of the name) that may use it",
    )
    CONTAINER_RUNTIME: ContainerRuntime = field(
        "docker", example="podman", description="what the worker builds with"
    )
    WORKER_IMAGE: str = field(
        DEFAULT_WORKER_IMAGE,
        example=DEFAULT_WORKER_IMAGE,
        description="the worker container image (kubernetes, ec2); default: slipway's own",
    )
    WORKER_TAG: str = field(__version__, example=__version__, description="its tag")
    QUAY_USERNAME: str | None = field(
        None, example="robot+builder", description="user to pull WORKER_IMAGE"
    )
    QUAY_PASSWORD: SecretStr | None = field(
        None, example="robot-token", description="password to pull WORKER_IMAGE"
    )
    SSH_AUTHORIZED_KEYS: list[str] = field(
        default_factory=list,
        example=["ssh-ed25519 AAAA... admin@example.com"],
        description="public keys put into the Ignition config",
    )
    CA_CERT: Path | None = field(
        None,
        example="/conf/stack/ssl.cert",
        description="CA the worker trusts; default: ssl.cert next to the config file",
    )
    EXTRA_CA_CERTS: list[Path] = field(
        default_factory=list,
        example=["/conf/stack/extra_ca_certs/ca.crt"],
        description="more CAs the worker trusts",
    )
    HTTP_PROXY: str | None = field(None, example="http://proxy.example.com:3128")
    HTTPS_PROXY: str | None = field(None, example="http://proxy.example.com:3128")
    NO_PROXY: str | None = field(None, example="localhost,.cluster.local")
    MAX_LIFETIME_S: int = field(
        10800,
        example=10800,
        unit="seconds",
        ge=1,
        description="VM/instance lifetime before it powers off",
    )
    DEBUG: bool = field(False, example=True, description="keep workers after the build")
    LAYER_CACHE: bool = field(
        False,
        example=True,
        description="slipway: podman keeps each step's layers on the worker's host and "
        "later builds reuse them (a build's --no-cache skips them); for the local executor "
        "or long-lived hosts: a new Pod or instance starts with an empty cache",
    )
    SBOM: bool = field(
        True,
        example=False,
        description="slipway: with SIGNING, attach an SBOM of each image this executor's "
        "workers build (docs/signing.md); false: provenance and signatures only",
    )
    REGISTRY_CACHE: bool = field(
        True,
        example=False,
        description="slipway: podman/buildah push each built step to a cache repository "
        "in the target registry and reuse steps found there, across workers "
        "(docs/layer-cache.md); a build's --no-cache skips it",
    )
    REGISTRY_CACHE_REPOSITORY: str = field(
        "{repository}-cache",
        example="{repository}",
        description="slipway: the cache repository in the target registry; {repository} "
        "is the build's NAMESPACE/NAME ({repository} alone: the image's own repository)",
    )
    REGISTRY_CACHE_EXCLUDE: list[str] = field(
        default_factory=list,
        example=["team-a/secret-app", "sandbox/*"],
        description="slipway: repositories (shell patterns) built without the registry cache",
    )

    PLATFORMS: list[str] = field(
        default_factory=list,
        example=["linux/amd64", "linux/arm64"],
        description="slipway: the platforms a build that names none is built for "
        "(docs/multi-arch.md); several: one manifest list per tag; empty: the worker "
        "host's own platform",
    )

    @property
    def cache_push_after_end(self) -> bool:
        """Whether a worker pushes the registry cache once its build's end is reported:
        only where the executor lets a worker finish after the end (local). A Job or an
        instance is deleted when its build ends: its workers push during the build."""
        return False

    @field_validator("MINIMUM_RETRY_THRESHOLD", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        # Quay's example writes `MINIMUM_RETRY_THRESHOLD:` (YAML null): the default, 0.
        return 0 if value is None else value

    @field_validator("REGISTRY_CACHE_REPOSITORY")
    @classmethod
    def _one_cache_per_repository(cls, value: str) -> str:
        if "{repository}" not in value:
            raise ValueError(
                f"{value!r} does not contain {{repository}}: each repository needs a cache "
                "of its own (layers must not pass between repositories), e.g. "
                "{repository}-cache"
            )
        if any(c in value for c in ",\n") or value.strip() != value:
            raise ValueError(f"{value!r} is not a repository path: no spaces or commas")
        return value

    @field_validator("REGISTRY_CACHE_EXCLUDE")
    @classmethod
    def _patterns_without_commas(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if "," in pattern or not pattern.strip():
                raise ValueError(
                    f"{pattern!r} is not a repository pattern: one NAMESPACE/NAME or shell "
                    "pattern (team/*) per list item, no commas"
                )
        return [p.strip() for p in value]

    @field_validator("PLATFORMS", mode="before")
    @classmethod
    def _known_platforms(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            return value  # pydantic says what is wrong with it
        try:
            return normalize_platforms(str(v) for v in values)
        except InvalidPlatform as exc:
            raise ValueError(str(exc)) from None

    @field_validator("NAMESPACE_WHITELIST", "SSH_AUTHORIZED_KEYS", "EXTRA_CA_CERTS", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fill_defaults(self, info: ValidationInfo) -> ExecutorConfigBase:
        if not self.NAME:
            self.NAME = self.EXECUTOR
        if self.CA_CERT is None and info.context and info.context.get("config_dir"):
            candidate = Path(info.context["config_dir"]) / "ssl.cert"
            if candidate.is_file():
                self.CA_CERT = candidate
        return self

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        """The EXECUTOR values this model validates: its EXECUTOR field's Literal."""
        return tuple(str(kind) for kind in typing.get_args(cls.model_fields["EXECUTOR"].annotation))
