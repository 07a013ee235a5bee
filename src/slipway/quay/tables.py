"""The columns of Quay's tables that a build manager reads or writes (Quay's
data/database.py; docs/quay-contract.md). Quay owns these tables and migrates them: this
metadata is never given to slipway's Alembic, and slipway never creates or alters them.

Quay writes naive timestamps: UTC (`utcnow`) in `queueitem`, local time in
`repositorybuild.started` and `accesstoken.created`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

quay_metadata = MetaData()


def utcnow() -> dt.datetime:
    """Now, as Quay's queue writes it: naive UTC (`datetime.utcnow()`)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def local_now() -> dt.datetime:
    """Now, as Quay's models default `datetime.now`: naive local time."""
    return dt.datetime.now()


queueitem = Table(
    "queueitem",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("queue_name", String(1024), nullable=False),
    Column("body", Text, nullable=False),
    Column("available_after", DateTime, nullable=False),
    Column("available", Boolean, nullable=False),
    Column("processing_expires", DateTime),
    Column("retries_remaining", Integer, nullable=False),
    Column("state_id", String(255), nullable=False),
)

repositorybuild = Table(
    "repositorybuild",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(255), nullable=False),
    Column("repository_id", Integer, nullable=False),
    Column("access_token_id", Integer, nullable=False),
    Column("resource_key", String(255)),
    Column("job_config", Text, nullable=False),
    Column("phase", String(255), nullable=False),
    Column("started", DateTime, nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("trigger_id", Integer),
    Column("pull_robot_id", Integer),
    Column("logs_archived", Boolean, nullable=False),
    Column("queue_id", String(255)),
)

accesstoken = Table(
    "accesstoken",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("friendly_name", String(255)),
    Column("token_name", String(255), nullable=False),
    Column("token_code", String(255)),
    Column("repository_id", Integer, nullable=False),
    Column("created", DateTime, nullable=False),
    Column("role_id", Integer, nullable=False),
    Column("temporary", Boolean, nullable=False),
    Column("kind_id", Integer),
)

repository = Table(
    "repository",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace_user_id", Integer),
    Column("name", String(255), nullable=False),
)

user = Table(
    "user",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(255), nullable=False),
    Column("robot", Boolean, nullable=False),
    Column("organization", Boolean, nullable=False),
)

repositorybuildtrigger = Table(
    "repositorybuildtrigger",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(255), nullable=False),
    Column("service_id", Integer, nullable=False),
    Column("repository_id", Integer, nullable=False),
    Column("secure_private_key", Text),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason_id", Integer),
    Column("disabled_datetime", DateTime),
    Column("successive_failure_count", Integer, nullable=False),
    Column("successive_internal_error_count", Integer, nullable=False),
)

buildtriggerservice = Table(
    "buildtriggerservice",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
)

disablereason = Table(
    "disablereason",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
)

repositorynotification = Table(
    "repositorynotification",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(255), nullable=False),
    Column("repository_id", Integer, nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("method_id", Integer, nullable=False),
    Column("number_of_failures", Integer, nullable=False),
    Column("last_ran_ms", BigInteger),
)

externalnotificationevent = Table(
    "externalnotificationevent",
    quay_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
)
