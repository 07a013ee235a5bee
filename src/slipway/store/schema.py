"""Tables. Times are UNIX seconds (float) so SQLite and PostgreSQL compare them alike.

Every table name starts with `slipway_` (and Alembic's version table is
`slipway_alembic_version`, store/migrations/env.py): slipway's tables may live in Quay's
own database, beside Quay's tables and Quay's `alembic_version`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

builds = Table(
    "slipway_builds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("phase", String(32), nullable=False),
    Column("display_name", String(255), nullable=False, default=""),
    Column("status", JSON, nullable=False, default=dict),
    Column("subdirectory", Text, nullable=False, default=""),
    Column("dockerfile_path", Text, nullable=False, default="Dockerfile"),
    Column("context", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("manual_user", String(255)),
    Column("trigger", JSON),
    Column("trigger_metadata", JSON),
    Column("resource_key", String(64)),
    Column("archive_url", Text),
    Column("pull_robot", String(255)),
    Column("pull_credentials", JSON),  # {"username", "password"}; never returned by the API
    Column("registry", String(255), nullable=False),
    Column("build_args", JSON, nullable=False, default=dict),
    Column("target", String(255)),
    # {"no_cache": bool, "pull": bool, "labels": {name: value}}; null: none given
    Column("options", JSON),
    Column("error", Text),
    Column("image_digest", String(255)),
    Column("retries_remaining", Integer, nullable=False),
    Column("executor", String(255)),
    Column("attempts", JSON, nullable=False, default=list),
    Column("job_id", String(36)),
    Column("log_count", Integer, nullable=False, default=0),
    Column("started", Float, nullable=False),
    Column("completed", Float),
    # when the build's log moved to the log archive (store/log_archiving.py): its entries
    # are read from there, its rows are gone; null: the log is in slipway_build_logs
    Column("log_archived_at", Float),
    # the overview's reads (store/overview.py): the repositories listing from the index
    # alone, workers per executor, builds ended since a time
    Index("ix_builds_repo_started_phase", "namespace", "repository", "started", "phase"),
    Index("ix_builds_phase_executor", "phase", "executor"),
    Index("ix_builds_completed", "completed"),
    # the archiver's pick-up (ended builds whose log is still in the table) and the
    # uploads' clean-up (the builds of one context): migration 0008
    Index("ix_builds_log_unarchived", "completed",
          sqlite_where=text("log_archived_at IS NULL AND completed IS NOT NULL"),
          postgresql_where=text("log_archived_at IS NULL AND completed IS NOT NULL")),
    Index("ix_builds_resource_key", "resource_key"),
)

build_queue = Table(
    "slipway_build_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("build_id", String(36), ForeignKey("slipway_builds.id"), nullable=False, unique=True),
    Column("namespace", String(255), nullable=False),
    # "namespace/name": at most one item of a repository is processed at a time
    Column("repository", String(511), nullable=False),
    Column("available", Boolean, nullable=False, default=True),
    Column("available_after", Float, nullable=False),
    Column("processing_expires", Float),
    Column("retries_remaining", Integer, nullable=False),
    Column("claimed_by", String(64)),
    Column("state_id", String(36), nullable=False),
    # QUEUE_TTL: the build expires unless its first attempt is claimed by then; cleared by
    # that claim (null: no limit, or started)
    Column("start_by", Float),
    Index("ix_queue_available", "available", "available_after"),
    Index("ix_queue_repository", "repository"),
    # queue depth per namespace; not processing_expires, which every lease renewal writes
    Index("ix_queue_namespace", "namespace"),
    # the queue-expiry look (store/queue.py due_to_expire): a range of the few items with
    # a start_by, nothing read when none is due; written only by a put and a first claim
    Index("ix_queue_start_by", "start_by"),
)

build_logs = Table(
    "slipway_build_logs",
    metadata,
    Column("build_id", String(36), ForeignKey("slipway_builds.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("message", Text, nullable=False),
    Column("type", String(16)),
    Column("data", JSON, nullable=False),
)

signing_keys = Table(
    "slipway_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("public_pem", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("retired", Float),
)

uploads = Table(
    "slipway_uploads",
    metadata,
    Column("file_id", String(36), primary_key=True),
    Column("mime_type", String(255), nullable=False),
    Column("path", Text),
    Column("size", Integer),
    Column("namespace", String(255)),
    Column("created", Float, nullable=False),
)

api_tokens = Table(
    "slipway_api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    # {"namespace or *": "read" | "write" | "admin"}
    Column("scopes", JSON, nullable=False),
    Column("created", Float, nullable=False),
    # migration 0011 (docs/access.md): the id a token is listed and revoked by (never
    # the token), who made it, when it stops working, when it was revoked, when it was
    # last used (written at most once a minute)
    Column("id", String(36)),
    Column("created_by", String(255)),
    # the creator's own id (a token's id, or "oidc:" and a signed-in user's subject): who
    # may list and revoke it besides the namespaces' admins; a name is no identity
    Column("creator_id", String(255)),
    Column("expires", Float),
    Column("revoked", Float),
    Column("last_used", Float),
    UniqueConstraint("id", name="uq_api_tokens_id"),
)

# who did what, from where (store/audit.py); rows are only added, and deleted by
# retention (RETENTION.AUDIT_DAYS)
audit_log = Table(
    "slipway_audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("namespace", String(255)),
    Column("target", String(255)),
    Column("source", String(255)),
    Column("details", JSON, nullable=False, default=dict),
    Index("ix_audit_at", "at"),
    Index("ix_audit_namespace_at", "namespace", "at"),
)

build_secrets = Table(
    "slipway_build_secrets",
    metadata,
    Column("build_id", String(36), ForeignKey("slipway_builds.id"), primary_key=True),
    # {id: value} as JSON, Fernet-encrypted (store/secrets.py); the row goes when the
    # build ends
    Column("sealed", Text, nullable=False),
    Column("created", Float, nullable=False),
)

triggers = Table(
    "slipway_triggers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # github | gitlab | generic
    Column("git_url", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # filters, tag templates, build settings, schedule (triggers/spec.py TriggerSpec)
    Column("spec", JSON, nullable=False),
    # {webhook_secret, ssh_key, token, token_user, status_token} as JSON, Fernet-encrypted
    # with BUILD_SECRETS_KEY (store/triggers.py); never returned by the API
    Column("sealed", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    # the next scheduled rebuild; moved on by the manager that claims it
    Column("next_run", Float),
    # {FROM image: digest} last seen by the base-image watch
    Column("base_digests", JSON),
    UniqueConstraint("namespace", "repository", "name", name="uq_triggers_name"),
    Index("ix_triggers_next_run", "next_run"),
)

trigger_deliveries = Table(
    "slipway_trigger_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger_id", String(36), ForeignKey("slipway_triggers.id", ondelete="CASCADE"),
           nullable=False),
    # the forge's delivery id (or the body's hash): unique per trigger, so a repeated
    # delivery is not built twice; null for refused deliveries (their id is not trusted)
    Column("delivery_key", String(255)),
    Column("event", String(64), nullable=False),
    Column("received", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # built | ignored | refused | failed
    Column("reason", Text, nullable=False),
    Column("ref", Text),
    Column("commit_sha", String(64)),
    Column("build_id", String(36)),
    UniqueConstraint("trigger_id", "delivery_key", name="uq_deliveries_key"),
    Index("ix_deliveries_trigger", "trigger_id", "received"),
)

commit_statuses = Table(
    "slipway_commit_statuses",
    metadata,
    Column("build_id", String(36), primary_key=True),
    Column("trigger_id", String(36), nullable=False),
    Column("posted", String(16)),  # the last state the forge accepted
    Column("wanted", String(16), nullable=False),  # the state to post next
    Column("tries", Integer, nullable=False),
    Column("due", Float),  # when to post (again)
    Column("last_error", Text),
    Index("ix_commit_statuses_due", "due"),
)

build_attestations = Table(
    "slipway_build_attestations",
    metadata,
    Column("build_id", String(36), ForeignKey("slipway_builds.id"), primary_key=True),
    # what the worker signed and attached, JSON (docs/signing.md): the signed digests,
    # the provenance's DSSE envelopes, the SBOM; public documents, nothing secret
    Column("document", Text, nullable=False),
    Column("created", Float, nullable=False),
)

build_traces = Table(
    "slipway_build_traces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # no foreign key: a build's spans may be written by another process than its record's
    # writes, in any order; retention deletes them with the build
    Column("build_id", String(36), nullable=False, index=True),
    # a list of span records (tracing/records.py), those one process wrote at once
    Column("spans", JSON, nullable=False),
    Column("created", Float, nullable=False),
)
