"""A Quay database for tests: the tables and columns of Quay's data/database.py that the
build system shares (docs/quay-contract.md), with the types and
indexes peewee gives them on PostgreSQL, the enum rows Quay's migrations seed, and an
`alembic_version` row holding a Quay revision.

`start_build` enqueues a build as Quay's web app does (endpoints/building.py start_build:
access token, repositorybuild row, queueitem, queue_id, in one transaction) and
`cancel_build` cancels one as Quay's API does (data/model/build.py
cancel_repository_build). Both are written here from Quay's source, independently of
slipway's code, so that tests compare slipway with Quay and not with itself."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from slipway.quay.encryption import FieldEncrypter

# a revision of Quay's data/migrations/versions (back fill build expand_config)
QUAY_REVISION = "a6c463dfb9fe"
# an example DATABASE_SECRET_KEY of a full Quay config
SECRET_KEY = "40157269433064266822674401740626984898972632465622168464725100311621640999470"

SCHEMA = """
CREATE TABLE "user" (
    id SERIAL PRIMARY KEY,
    uuid VARCHAR(36),
    username VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT false,
    organization BOOLEAN NOT NULL DEFAULT false,
    robot BOOLEAN NOT NULL DEFAULT false,
    enabled BOOLEAN NOT NULL DEFAULT true,
    maximum_queued_builds_count INTEGER
);
CREATE UNIQUE INDEX user_username ON "user" (username);
CREATE UNIQUE INDEX user_email ON "user" (email);
CREATE INDEX user_robot ON "user" (robot);
CREATE INDEX user_organization ON "user" (organization);

CREATE TABLE visibility (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX visibility_name ON visibility (name);
CREATE TABLE repositorykind (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX repositorykind_name ON repositorykind (name);

CREATE TABLE repository (
    id SERIAL PRIMARY KEY,
    namespace_user_id INTEGER REFERENCES "user" (id),
    name VARCHAR(255) NOT NULL,
    visibility_id INTEGER NOT NULL REFERENCES visibility (id),
    description TEXT,
    badge_token VARCHAR(255) NOT NULL,
    kind_id INTEGER NOT NULL REFERENCES repositorykind (id),
    trust_enabled BOOLEAN NOT NULL DEFAULT false,
    state INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX repository_namespace_user_id_name ON repository (namespace_user_id, name);

CREATE TABLE role (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX role_name ON role (name);
CREATE TABLE accesstokenkind (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX accesstokenkind_name ON accesstokenkind (name);

CREATE TABLE accesstoken (
    id SERIAL PRIMARY KEY,
    friendly_name VARCHAR(255),
    token_name VARCHAR(255) NOT NULL,
    token_code VARCHAR(255) NOT NULL,
    repository_id INTEGER NOT NULL REFERENCES repository (id),
    created TIMESTAMP NOT NULL,
    role_id INTEGER NOT NULL REFERENCES role (id),
    temporary BOOLEAN NOT NULL,
    kind_id INTEGER REFERENCES accesstokenkind (id)
);
CREATE UNIQUE INDEX accesstoken_token_name ON accesstoken (token_name);

CREATE TABLE buildtriggerservice (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX buildtriggerservice_name ON buildtriggerservice (name);
CREATE TABLE disablereason (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX disablereason_name ON disablereason (name);

CREATE TABLE repositorybuildtrigger (
    id SERIAL PRIMARY KEY,
    uuid VARCHAR(255) NOT NULL,
    service_id INTEGER NOT NULL REFERENCES buildtriggerservice (id),
    repository_id INTEGER NOT NULL REFERENCES repository (id),
    connected_user_id INTEGER NOT NULL REFERENCES "user" (id),
    secure_auth_token VARCHAR(255),
    secure_private_key TEXT,
    fully_migrated BOOLEAN NOT NULL DEFAULT false,
    config TEXT NOT NULL,
    write_token_id INTEGER REFERENCES accesstoken (id),
    pull_robot_id INTEGER REFERENCES "user" (id),
    enabled BOOLEAN NOT NULL DEFAULT true,
    disabled_reason_id INTEGER REFERENCES disablereason (id),
    disabled_datetime TIMESTAMP,
    successive_failure_count INTEGER NOT NULL DEFAULT 0,
    successive_internal_error_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX repositorybuildtrigger_uuid ON repositorybuildtrigger (uuid);
CREATE INDEX repositorybuildtrigger_disabled_datetime ON repositorybuildtrigger (disabled_datetime);

CREATE TABLE queueitem (
    id SERIAL PRIMARY KEY,
    queue_name VARCHAR(1024) NOT NULL,
    body TEXT NOT NULL,
    available_after TIMESTAMP NOT NULL,
    available BOOLEAN NOT NULL,
    processing_expires TIMESTAMP,
    retries_remaining INTEGER NOT NULL,
    state_id VARCHAR(255) NOT NULL
);
CREATE INDEX queueitem_queue_name ON queueitem (queue_name);
CREATE UNIQUE INDEX queueitem_state_id ON queueitem (state_id);
-- QueueItem.Meta.indexes (names shortened: PostgreSQL cuts names at 63 characters)
CREATE INDEX queueitem_pe_available ON queueitem (processing_expires, available);
CREATE INDEX queueitem_pe_qname_available ON queueitem (processing_expires, queue_name, available);
CREATE INDEX queueitem_pe_aafter_rremaining_available
    ON queueitem (processing_expires, available_after, retries_remaining, available);
CREATE INDEX queueitem_pe_aafter_qname_rremaining_available
    ON queueitem (processing_expires, available_after, queue_name, retries_remaining, available);

CREATE TABLE repositorybuild (
    id SERIAL PRIMARY KEY,
    uuid VARCHAR(255) NOT NULL,
    repository_id INTEGER NOT NULL REFERENCES repository (id),
    access_token_id INTEGER NOT NULL REFERENCES accesstoken (id),
    resource_key VARCHAR(255),
    job_config TEXT NOT NULL,
    phase VARCHAR(255) NOT NULL,
    started TIMESTAMP NOT NULL,
    display_name VARCHAR(255) NOT NULL,
    trigger_id INTEGER REFERENCES repositorybuildtrigger (id),
    pull_robot_id INTEGER REFERENCES "user" (id),
    logs_archived BOOLEAN NOT NULL DEFAULT false,
    queue_id VARCHAR(255)
);
CREATE INDEX repositorybuild_uuid ON repositorybuild (uuid);
CREATE INDEX repositorybuild_resource_key ON repositorybuild (resource_key);
CREATE INDEX repositorybuild_started ON repositorybuild (started);
CREATE INDEX repositorybuild_logs_archived ON repositorybuild (logs_archived);
CREATE INDEX repositorybuild_queue_id ON repositorybuild (queue_id);
CREATE INDEX repositorybuild_repository_id_started_phase
    ON repositorybuild (repository_id, started, phase);
CREATE INDEX repositorybuild_started_logs_archived_phase
    ON repositorybuild (started, logs_archived, phase);

CREATE TABLE externalnotificationevent (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX externalnotificationevent_name ON externalnotificationevent (name);
CREATE TABLE externalnotificationmethod (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
CREATE UNIQUE INDEX externalnotificationmethod_name ON externalnotificationmethod (name);

CREATE TABLE repositorynotification (
    id SERIAL PRIMARY KEY,
    uuid VARCHAR(255) NOT NULL,
    repository_id INTEGER NOT NULL REFERENCES repository (id),
    event_id INTEGER NOT NULL REFERENCES externalnotificationevent (id),
    method_id INTEGER NOT NULL REFERENCES externalnotificationmethod (id),
    title VARCHAR(255),
    config_json TEXT NOT NULL,
    event_config_json TEXT NOT NULL DEFAULT '{}',
    number_of_failures INTEGER NOT NULL DEFAULT 0,
    last_ran_ms BIGINT
);
CREATE INDEX repositorynotification_uuid ON repositorynotification (uuid);
CREATE INDEX repositorynotification_last_ran_ms ON repositorynotification (last_ran_ms);

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
"""

# the enum rows of Quay's migrations (initial schema, c156deb8845d, ...)
SEEDS = {
    "visibility": ["public", "private"],
    "repositorykind": ["image", "application"],
    "role": ["admin", "write", "read"],
    "accesstokenkind": ["build-worker", "pushpull-token"],
    "buildtriggerservice": ["github", "custom-git", "bitbucket", "gitlab"],
    "disablereason": ["user_toggled", "successive_build_failures",
                      "successive_build_internal_errors"],
    "externalnotificationevent": ["repo_push", "build_queued", "build_start", "build_success",
                                  "build_failure", "build_cancelled",
                                  "vulnerability_found"],
    "externalnotificationmethod": ["quay_notification", "email", "webhook", "flowdock",
                                   "hipchat", "slack"],
}

PHASES_NOT_ALLOWED_TO_CANCEL_FROM = ("pushing", "complete", "error", "internalerror")


def _random_string(length: int) -> str:
    """data/fields.py random_string: A-Z and 0-9."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StartedBuild:
    uuid: str
    build_id: int
    queue_id: int
    token: str  # token_name + token_code: what quay-builder logs in with
    repository_id: int
    pull_credentials: dict[str, str] | None


class QuayDatabase:
    """Quay's tables in the PostgreSQL database of `uri`."""

    def __init__(self, uri: str, *, secret_key: str = SECRET_KEY,
                 server_hostname: str = "quay.example.test", scheme: str = "http",
                 queue_name: str = "dockerfilebuild") -> None:
        self.uri = uri
        self.secret_key = secret_key
        self.encrypter = FieldEncrypter(secret_key)
        self.server_hostname = server_hostname
        self.scheme = scheme
        self.queue_name = queue_name

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.uri, row_factory=dict_row)

    def create(self) -> QuayDatabase:
        with self.connect() as conn:
            conn.execute(SCHEMA)
            for table, names in SEEDS.items():
                for name in names:
                    conn.execute(f"INSERT INTO {table} (name) VALUES (%s)", (name,))
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (%s)",
                         (QUAY_REVISION,))
        return self

    def _id(self, conn: psycopg.Connection[Any], table: str, name: str) -> int:
        row = conn.execute(f"SELECT id FROM {table} WHERE name = %s", (name,)).fetchone()
        assert row is not None, f"no {table} {name!r}"
        return int(row["id"])

    # --- users, repositories, triggers, notifications ---------------------------------

    def user(self, username: str, *, organization: bool = False, robot: bool = False,
             maximum_queued_builds_count: int | None = None) -> int:
        with self.connect() as conn:
            found = conn.execute('SELECT id FROM "user" WHERE username = %s',
                                 (username,)).fetchone()
            if found:
                return int(found["id"])
            row = conn.execute(
                'INSERT INTO "user" (uuid, username, email, organization, robot, '
                "maximum_queued_builds_count) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (str(uuid.uuid4()), username, f"{username}@example.test", organization, robot,
                 maximum_queued_builds_count),
            ).fetchone()
            assert row is not None
            return int(row["id"])

    def repository(self, namespace: str, name: str, *, kind: str = "image",
                   state: int = 0) -> int:
        namespace_id = self.user(namespace, organization=True)
        with self.connect() as conn:
            row = conn.execute(
                "INSERT INTO repository (namespace_user_id, name, visibility_id, badge_token, "
                "kind_id, state) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (namespace_id, name, self._id(conn, "visibility", "private"),
                 str(uuid.uuid4()), self._id(conn, "repositorykind", kind), state),
            ).fetchone()
            assert row is not None
            return int(row["id"])

    def trigger(self, repository_id: int, *, service: str = "github",
                private_key: str | None = None, enabled: bool = True) -> tuple[int, str]:
        connected = self.user("trigger-owner")
        trigger_uuid = str(uuid.uuid4())
        secure_key = self.encrypter.encrypt(private_key) if private_key is not None else None
        with self.connect() as conn:
            row = conn.execute(
                "INSERT INTO repositorybuildtrigger (uuid, service_id, repository_id, "
                "connected_user_id, secure_private_key, config, enabled) "
                "VALUES (%s, %s, %s, %s, %s, '{}', %s) RETURNING id",
                (trigger_uuid, self._id(conn, "buildtriggerservice", service), repository_id,
                 connected, secure_key, enabled),
            ).fetchone()
            assert row is not None
            return int(row["id"]), trigger_uuid

    def notification(self, repository_id: int, event: str, method: str = "webhook") -> str:
        notification_uuid = str(uuid.uuid4())
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO repositorynotification (uuid, repository_id, event_id, method_id, "
                "config_json) VALUES (%s, %s, %s, %s, %s)",
                (notification_uuid, repository_id,
                 self._id(conn, "externalnotificationevent", event),
                 self._id(conn, "externalnotificationmethod", method),
                 json.dumps({"url": "http://hooks.example.test/"})),
            )
        return notification_uuid

    # --- Quay's web app -----------------------------------------------------------------

    def start_build(
        self,
        namespace: str,
        name: str,
        *,
        tags: list[str] | None = None,
        subdirectory: str = "/Dockerfile",
        context: str = "/",
        resource_key: str | None = None,
        archive_url: str | None = None,
        trigger_id: int | None = None,
        trigger_metadata: dict[str, Any] | None = None,
        manual_user: str | None = "builder",
        pull_robot: tuple[str, str] | None = None,
        display_name: str | None = None,
    ) -> StartedBuild:
        """endpoints/building.py start_build, in one transaction. `pull_robot` is the
        robot's (username, token): Quay reads the token from robotaccounttoken."""
        with self.connect() as conn:
            repo = conn.execute(
                'SELECT r.id, r.state, k.name AS kind, u.id AS ns_id, u.username, '
                "u.maximum_queued_builds_count FROM repository r "
                'JOIN "user" u ON u.id = r.namespace_user_id '
                "JOIN repositorykind k ON k.id = r.kind_id WHERE u.username = %s "
                "AND r.name = %s", (namespace, name),
            ).fetchone()
            assert repo is not None, f"no repository {namespace}/{name}"
            if repo["kind"] != "image":
                raise RuntimeError(
                    f"Attempt to start a build for application repository {repo['id']}")
            if repo["state"] != 0:
                raise RuntimeError("Attempt to start a build for a non-normal repository")
            if trigger_id is not None:
                trig = conn.execute("SELECT enabled FROM repositorybuildtrigger WHERE id = %s",
                                    (trigger_id,)).fetchone()
                if trig is None or not trig["enabled"]:
                    raise RuntimeError("BuildTriggerDisabledException")
            if repo["maximum_queued_builds_count"] is not None:
                alive = conn.execute(
                    "SELECT count(*) AS n FROM queueitem WHERE queue_name ILIKE %s "
                    "AND retries_remaining > 0", (f"{self.queue_name}/{namespace}%",),
                ).fetchone()
                assert alive is not None
                if alive["n"] >= repo["maximum_queued_builds_count"]:
                    raise RuntimeError("MaximumBuildsQueuedException")

            token_name, token_code = _random_string(32), _random_string(32)
            token = conn.execute(
                "INSERT INTO accesstoken (friendly_name, token_name, token_code, repository_id, "
                "created, role_id, temporary, kind_id) VALUES (%s, %s, %s, %s, %s, %s, true, %s) "
                "RETURNING id",
                ("Repository Build Token", token_name, self.encrypter.encrypt(token_code),
                 repo["id"], dt.datetime.now(), self._id(conn, "role", "write"),
                 self._id(conn, "accesstokenkind", "build-worker")),
            ).fetchone()
            assert token is not None
            job_config = {
                "docker_tags": tags if tags is not None else ["latest"],
                "registry": self.server_hostname,
                "build_subdir": subdirectory,
                "context": context,
                "trigger_metadata": trigger_metadata or {},
                "is_manual": trigger_id is None,
                "manual_user": manual_user,
                "archive_url": archive_url,
            }
            robot_id = None
            creds = None
            if pull_robot is not None:
                robot_name, robot_token = pull_robot
                robot_id = self.user(robot_name, robot=True)
                creds = {"username": robot_name, "password": robot_token,
                         "registry": f"{self.scheme}://{self.server_hostname}/v1/"}
            build_uuid = str(uuid.uuid4())
            build = conn.execute(
                "INSERT INTO repositorybuild (uuid, repository_id, access_token_id, "
                "resource_key, job_config, phase, started, display_name, trigger_id, "
                "pull_robot_id, logs_archived) "
                "VALUES (%s, %s, %s, %s, %s, 'waiting', %s, %s, %s, %s, false) RETURNING id",
                (build_uuid, repo["id"], token["id"], resource_key, json.dumps(job_config),
                 dt.datetime.now(), display_name or build_uuid.replace("-", "")[:7],
                 trigger_id, robot_id),
            ).fetchone()
            assert build is not None
            body = json.dumps({"build_uuid": build_uuid, "pull_credentials": creds})
            item = conn.execute(
                "INSERT INTO queueitem (queue_name, body, available_after, available, "
                "retries_remaining, state_id) VALUES (%s, %s, %s, true, 3, %s) RETURNING id",
                (f"{self.queue_name}/{namespace}/{name}/", body, utcnow(), str(uuid.uuid4())),
            ).fetchone()
            assert item is not None
            conn.execute("UPDATE repositorybuild SET queue_id = %s WHERE id = %s",
                         (str(item["id"]), build["id"]))
        return StartedBuild(build_uuid, int(build["id"]), int(item["id"]),
                            token_name + token_code, int(repo["id"]), creds)

    def update_phase_then_close(self, build_uuid: str, phase: str) -> bool:
        """data/model/build.py update_phase_then_close."""
        with self.connect() as conn:
            row = conn.execute("SELECT id, phase FROM repositorybuild WHERE uuid = %s "
                               "ORDER BY id LIMIT 1", (build_uuid,)).fetchone()
            if row is None or row["phase"] == "cancelled":
                return False
            cursor = conn.execute(
                "UPDATE repositorybuild SET phase = %s WHERE id = %s AND phase = %s",
                (phase, row["id"], row["phase"]),
            )
            return cursor.rowcount > 0

    def cancel_build(self, build_uuid: str,
                     canceller: Callable[[str], bool] | None = None) -> bool:
        """data/model/build.py cancel_repository_build (what DELETE .../build/<uuid> runs):
        the queue item is deleted whatever the phase; the manager is asked to cancel
        (`canceller`; None: Quay's NoopCanceller) unless the build is pushing or over;
        the first that succeeds moves the phase to cancelled."""
        build = self.build_row(build_uuid)
        phase, queue_id = build["phase"], build["queue_id"]

        def in_queue() -> bool:
            deleted = False
            if queue_id is not None:
                with self.connect() as conn:
                    deleted = conn.execute("DELETE FROM queueitem WHERE id = %s",
                                           (int(queue_id),)).rowcount > 0
            return phase == "waiting" and deleted

        def in_manager() -> bool:
            if phase in PHASES_NOT_ALLOWED_TO_CANCEL_FROM:
                return False
            return canceller(build_uuid) if canceller is not None else False

        for attempt in (in_queue, in_manager):
            if attempt():
                return self.update_phase_then_close(build_uuid, "cancelled")
        return False

    # --- rows, for assertions -----------------------------------------------------------

    def _row(self, sql: str, *args: Any) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute(sql, args).fetchone()
        assert row is not None, sql
        return dict(row)

    def build_row(self, build_uuid: str) -> dict[str, Any]:
        return self._row("SELECT * FROM repositorybuild WHERE uuid = %s", build_uuid)

    def queue_row(self, item_id: int) -> dict[str, Any] | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM queueitem WHERE id = %s", (item_id,)).fetchone()
        return dict(row) if row else None

    def trigger_row(self, trigger_id: int) -> dict[str, Any]:
        return self._row("SELECT t.*, d.name AS disabled_reason FROM repositorybuildtrigger t "
                         "LEFT JOIN disablereason d ON d.id = t.disabled_reason_id "
                         "WHERE t.id = %s", trigger_id)

    def queue_rows(self, like: str = "%") -> list[dict[str, Any]]:
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM queueitem WHERE queue_name LIKE %s ORDER BY id",
                                (like,)).fetchall()
        return [dict(r) for r in rows]

    def alembic_versions(self) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return [str(r["version_num"]) for r in rows]

    def execute(self, sql: str, *args: Any) -> None:
        with self.connect() as conn:
            conn.execute(sql, args)
