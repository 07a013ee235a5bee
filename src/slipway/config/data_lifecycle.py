"""LOG_ARCHIVE and RETENTION: where finished build logs go, and how long build records,
archived logs and uploaded contexts are kept (docs/data-lifecycle.md). slipway additions;
Quay mode leaves Quay's own logs and builds to Quay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from slipway.config_fields import field, problem

_MODEL_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class LogArchiveConfig(BaseModel):
    """LOG_ARCHIVE: the store of finished build logs. Without BUCKET, a directory
    (default DATA_DIR/ + LOG_ARCHIVE_PATH); with BUCKET, S3-compatible storage."""

    model_config = _MODEL_CONFIG

    ENABLED: bool = field(
        True, example=True,
        description="false: finished logs stay in the database (retention still deletes "
        "them with their builds)")
    DIRECTORY: Path | None = field(
        None, example="/var/lib/slipway/logarchive",
        description="the archive directory; default DATA_DIR/ + LOG_ARCHIVE_PATH")
    BUCKET: str | None = field(
        None, example="slipway-logs", description="S3 bucket of the archive (instead of a "
        "directory)")
    PREFIX: str | None = field(
        None, example="logarchive/",
        description="prefix of every object key in BUCKET; default LOG_ARCHIVE_PATH")
    ENDPOINT_URL: str | None = field(
        None, example="https://s3.example.com",
        description="S3-compatible endpoint (MinIO, Ceph RGW, ...); default AWS")
    REGION: str | None = field(None, example="us-east-1", description="the bucket's region")
    ACCESS_KEY: SecretStr | None = field(
        None, example="AKIA...", description="access key id; default boto3's credential chain")
    SECRET_KEY: SecretStr | None = field(
        None, example="secret", description="secret access key (with ACCESS_KEY)")
    ARCHIVE_AFTER: float = field(
        60, example=60, unit="seconds", ge=0,
        description="how long after its build ends a log is archived (late readers and "
        "writers of the live log finish first)")

    @model_validator(mode="after")
    def _one_place(self) -> LogArchiveConfig:
        if self.DIRECTORY is not None and self.BUCKET:
            raise problem("give either DIRECTORY (a directory archive) or BUCKET (S3), not "
                          "both", key="BUCKET")
        if (self.ACCESS_KEY is None) != (self.SECRET_KEY is None):
            missing = "SECRET_KEY" if self.SECRET_KEY is None else "ACCESS_KEY"
            raise problem("ACCESS_KEY and SECRET_KEY go together; give both, or neither "
                          "(boto3's own credential chain)", key=missing)
        return self


Days = Annotated[float, Field(ge=0)]


class RetentionConfig(BaseModel):
    """RETENTION: build records (with their logs and archived logs) older than their
    namespace's age are deleted, except each repository's newest KEEP_LAST and any build
    not ended; uploaded contexts go CONTEXT_GRACE after their builds end."""

    model_config = _MODEL_CONFIG

    ENABLED: bool = field(True, example=True, description="false: nothing is ever deleted")
    DEFAULT_DAYS: Days | None = field(
        90, example=90, unit="days",
        description="age (since it ended) at which a build is deleted; null: never")
    NAMESPACES: dict[str, Days | None] = field(
        default_factory=dict, example={"team": 30},
        description="{namespace: days} overriding DEFAULT_DAYS (null: never)")
    KEEP_LAST: int = field(
        10, example=10, ge=0,
        description="the newest builds of each repository kept whatever their age")
    CONTEXT_GRACE: float = field(
        3600, example=3600, unit="seconds", ge=0,
        description="how long an uploaded context is kept after its builds end (for "
        "\"build again\")")
    AUDIT_DAYS: Days | None = field(
        365, example=365, unit="days",
        description="age at which an audit log entry is deleted (docs/access.md); null: "
        "never")
    INTERVAL: float = field(
        300, example=300, unit="seconds", gt=0,
        description="time between two background passes (archive, retention, contexts)")
    BATCH_SIZE: int = field(
        500, example=500, ge=1, description="rows deleted per transaction")
    BATCH_PAUSE: float = field(
        0.005, example=0.005, unit="seconds", ge=0,
        description="least pause between two batches (it is at least as long as the batch "
        "took), so the scheduler's writes go first")

    def days_for(self, namespace: str) -> float | None:
        """The namespace's retention age in days (None: kept forever)."""
        if namespace in self.NAMESPACES:
            return self.NAMESPACES[namespace]
        return self.DEFAULT_DAYS
