"""Prometheus metrics, defined once and shared by the manager and the API."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUILDS_SUBMITTED = Counter("slipway_builds_submitted_total", "Builds submitted", ["namespace"])
BUILDS_SCHEDULED = Counter(
    "slipway_builds_scheduled_total", "Build attempts handed to an executor", ["executor"]
)
EXECUTOR_FALLBACKS = Counter(
    "slipway_executor_fallbacks_total",
    "Attempts an executor did not take (it failed to start a worker, or its retry threshold, "
    "whitelist or rollout excluded the build) so a later executor was asked",
    ["executor", "reason"],
)
BUILDS_FINISHED = Counter("slipway_builds_finished_total", "Builds that ended", ["phase"])
BUILD_RETRIES = Counter("slipway_build_retries_total", "Attempts retried", ["reason"])
RUNNING_WORKERS = Gauge("slipway_running_workers", "Workers this manager is tracking")
SCHEDULE_LATENCY = Histogram(
    "slipway_schedule_latency_seconds",
    "Time from submit to the executor call",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LOG_LINES = Counter("slipway_log_lines_total", "Log lines accepted from workers")
STALE_CALLS_REFUSED = Counter(
    "slipway_stale_worker_calls_total",
    "Worker calls refused because their attempt had ended (a worker cut off or paused "
    "past HEARTBEAT_EXPIRY, a cancelled build's, a late one)",
    ["call"],
)

# data lifecycle (docs/data-lifecycle.md): what housekeeping passes removed and reclaimed
GC_REMOVED = Counter(
    "slipway_gc_removed_total",
    "What retention and the context clean-up removed: builds (records), log_lines (rows of "
    "logs not archived), archived_logs (archive objects), contexts (uploaded contexts), "
    "audit_entries (audit log entries past RETENTION.AUDIT_DAYS)",
    ["kind"],
)
GC_RECLAIMED_BYTES = Counter(
    "slipway_gc_reclaimed_bytes_total",
    "Bytes given back: archive (archive objects deleted), contexts (uploaded files "
    "deleted), database (SQLite pages returned to the file system)",
    ["kind"],
)
LOGS_ARCHIVED = Counter("slipway_logs_archived_total", "Build logs moved to the log archive")
LOG_ARCHIVE_BYTES = Counter(
    "slipway_log_archive_written_bytes_total", "Bytes of log archive objects written")
LOG_ARCHIVE_FAILURES = Counter(
    "slipway_log_archive_failures_total",
    "Logs a pass could not archive (the archive storage failed, or the log changed); "
    "they stay in the database and the next pass tries again")
DATABASE_SIZE = Gauge(
    "slipway_database_size_bytes",
    "Size of slipway's database (SQLite: page_count*page_size; PostgreSQL: "
    "pg_database_size), as of the last housekeeping pass")
GC_LAST_PASS = Gauge(
    "slipway_gc_last_pass_timestamp_seconds", "When the last housekeeping pass ended")
