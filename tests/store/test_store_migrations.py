"""slipway's schema beside Quay's: `slipway_*` tables and slipway's own version table;
an older slipway database (unprefixed tables, revision in alembic_version) is moved to
them with its data; Quay's database gets slipway's tables and keeps its revision; any
other database is refused before anything is created."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import make_url
from support.postgres_server import PostgresServer
from support.quay_db import QUAY_REVISION, QuayDatabase

from slipway.domain.phases import Phase
from slipway.store.database import MIGRATIONS_DIR, sync_url
from slipway.store.database_kind import (
    STANDALONE_TABLES,
    DatabaseKind,
    ForeignDatabase,
    database_kind,
    only_slipway_tables,
    only_slipway_tables_in_quay,
)
from slipway.store.facade import SqlStore
from slipway.store.records import LogEntry
from slipway.store.schema import metadata

SLIPWAY_TABLES = {"slipway_builds", "slipway_build_queue", "slipway_build_logs",
                  "slipway_build_secrets", "slipway_build_attestations", "slipway_build_traces",
                  "slipway_triggers", "slipway_trigger_deliveries", "slipway_commit_statuses",
                  "slipway_signing_keys", "slipway_uploads", "slipway_api_tokens",
                  "slipway_audit_log",
                  "slipway_alembic_version"}
LATER_TABLES = {"slipway_build_secrets", "slipway_triggers", "slipway_trigger_deliveries",
                "slipway_commit_statuses", "slipway_audit_log", "slipway_build_attestations",
                "slipway_build_traces"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/m.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


def _sql(db_uri: str, *statements: str) -> list[list[tuple[object, ...]]]:
    """Run `statements` in one transaction; the rows of each SELECT."""
    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    results: list[list[tuple[object, ...]]] = []
    try:
        with engine.begin() as conn:
            for statement in statements:
                result = conn.execute(text(statement))
                results.append([tuple(r) for r in result.all()] if result.returns_rows else [])
    finally:
        engine.dispose()
    return results


def _tables(db_uri: str) -> set[str]:
    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _differences(db_uri: str, *, filtered: bool = True, in_quay: bool = False
                 ) -> list[object]:
    """What autogenerate would write: the schema against slipway's metadata."""
    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            include = only_slipway_tables_in_quay if in_quay else only_slipway_tables
            opts = {"include_object": include} if filtered else {}
            return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))
    finally:
        engine.dispose()


# the newest revision: a database slipway opens is migrated all the way
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

def _old_slipway_database(db_uri: str) -> None:
    """A database as slipway made it before revision 0003: revision 0001's tables and
    their revision in Alembic's default table."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(db_uri).replace("%", "%%"))
    command.upgrade(cfg, "0001")
    statements = ["ALTER TABLE slipway_alembic_version RENAME TO alembic_version"]
    if db_uri.startswith("postgresql"):
        statements.append("ALTER TABLE alembic_version RENAME CONSTRAINT "
                          "slipway_alembic_version_pkc TO alembic_version_pkc")
    _sql(db_uri, *statements)


async def test_a_new_database_gets_prefixed_tables_and_its_own_version_table(
    db_uri: str,
) -> None:
    store = await SqlStore(db_uri).open()
    await store.close()
    tables = _tables(db_uri)
    assert tables == SLIPWAY_TABLES
    [[(revision,)]] = _sql(db_uri, "SELECT version_num FROM slipway_alembic_version")
    assert revision == HEAD
    assert _differences(db_uri) == []  # the migrations give exactly the tables of schema.py
    assert database_kind(db_uri).kind is DatabaseKind.SLIPWAY


async def test_an_old_slipway_database_is_moved_to_the_new_names_with_its_data(
    db_uri: str,
) -> None:
    _old_slipway_database(db_uri)
    assert database_kind(db_uri).kind is DatabaseKind.SLIPWAY_UNPREFIXED
    now = time.time()
    _sql(
        db_uri,
        "INSERT INTO builds (id, namespace, repository, phase, display_name, status, "
        "subdirectory, dockerfile_path, context, tags, registry, build_args, "
        "retries_remaining, attempts, log_count, started) VALUES ('b1', 'ns', 'repo', "
        f"'waiting', 'd', '{{}}', '', 'Dockerfile', '', '[\"latest\"]', 'r:5000', '{{}}', 3, "
        f"'[]', 1, {now})",
        "INSERT INTO build_queue (build_id, namespace, repository, available, "
        f"available_after, retries_remaining, state_id) VALUES ('b1', 'ns', 'ns/repo', "
        f"true, {now}, 3, 's1')",
        "INSERT INTO build_logs (build_id, idx, message, data) VALUES "
        "('b1', 0, 'first line', '{}')",
        f"INSERT INTO signing_keys (kid, public_pem, created) VALUES ('k1', 'pem', {now})",
        f"INSERT INTO uploads (file_id, mime_type, created) VALUES ('f1', 'x/y', {now})",
        "INSERT INTO api_tokens (token_hash, name, scopes, created) VALUES "
        f"('h1', 'admin', '{{}}', {now})",
    )

    store = await SqlStore(db_uri).open()
    try:
        record = await store.builds.get("b1")
        assert record is not None and record.phase is Phase.WAITING and record.tags == ["latest"]
        assert [e.message for e in (await store.logs.read("b1"))[1]] == ["first line"]
        # the renamed tables keep working together: the log's foreign key, the queue
        assert await store.logs.append("b1", [LogEntry("second line")]) == 2
        (item,) = await store.queue.claim("m", limit=1, lease_seconds=60)
        assert item.build_id == "b1" and item.retries_remaining == 2
        assert await store.keys.get("k1") == "pem"
    finally:
        await store.close()
    assert _tables(db_uri) == SLIPWAY_TABLES
    names = sorted(SLIPWAY_TABLES)
    counts = _sql(db_uri, *(f"SELECT count(*) FROM {t}" for t in names))
    assert {t: c[0][0] for t, c in zip(names, counts, strict=True)} == {
        # the tables that came after the renaming: nothing to move into them
        t: 0 if t in LATER_TABLES else {"slipway_build_logs": 2}.get(t, 1) for t in names}
    [[(revision,)]] = _sql(db_uri, "SELECT version_num FROM slipway_alembic_version")
    assert revision == HEAD
    assert _differences(db_uri) == []


@pytest.fixture
def quay(postgres: PostgresServer) -> QuayDatabase:
    return QuayDatabase(postgres.create_database()).create()


async def test_quays_database_gets_slipways_tables_and_keeps_its_revision(
    quay: QuayDatabase,
) -> None:
    quay.repository("acme", "app")
    started = quay.start_build("acme", "app")
    quay_tables = _tables(quay.uri)
    assert database_kind(quay.uri).kind is DatabaseKind.QUAY

    for _ in range(2):  # a second start finds the schema current
        store = await SqlStore(quay.uri).open()
        await store.close()

    # the triggers' tables are slipway's own database's only
    assert _tables(quay.uri) == quay_tables | (SLIPWAY_TABLES - STANDALONE_TABLES)
    assert quay.alembic_versions() == [QUAY_REVISION]
    assert quay.queue_row(started.queue_id) is not None  # Quay's rows untouched
    found = database_kind(quay.uri)
    assert found.kind is DatabaseKind.QUAY and found.slipway_revision == HEAD
    assert found.quay_revision == QUAY_REVISION
    # autogenerate against Quay's database proposes nothing; without the filter it
    # would drop Quay's tables
    assert _differences(quay.uri, in_quay=True) == []
    dropped = {d[1].name for d in _differences(quay.uri, filtered=False)
               if isinstance(d, tuple) and d[0] == "remove_table"}
    assert {"queueitem", "repositorybuild", "accesstoken"} <= dropped


async def test_someone_elses_database_is_refused_and_left_as_it_was(db_uri: str) -> None:
    _sql(db_uri, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(ForeignDatabase) as info:
        await SqlStore(db_uri).open()
    message = str(info.value)
    assert "customers" in message and "neither slipway's nor Quay's" in message
    assert "point DB_URI at an empty database for slipway" in message
    assert _tables(db_uri) == {"customers"}


async def test_another_programs_alembic_revision_is_refused(db_uri: str) -> None:
    _sql(db_uri, "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
         "INSERT INTO alembic_version VALUES ('abc123')", "CREATE TABLE things (id INTEGER)")
    with pytest.raises(ForeignDatabase, match=r"revision 'abc123' of another program"):
        await SqlStore(db_uri).open()
    assert _tables(db_uri) == {"alembic_version", "things"}


async def test_quays_tables_without_quays_revision_are_refused(quay: QuayDatabase) -> None:
    quay.execute("DELETE FROM alembic_version")
    with pytest.raises(ForeignDatabase, match=r"no Quay revision in alembic_version"):
        await SqlStore(quay.uri).open()
    assert not SLIPWAY_TABLES & _tables(quay.uri)


async def test_a_password_in_db_uri_is_not_in_the_refusal(postgres: PostgresServer) -> None:
    uri = postgres.create_database()
    _sql(uri, "CREATE TABLE customers (id INTEGER)")
    with pytest.raises(ForeignDatabase) as info:
        # trust auth: the password is not checked, only shown (or not)
        await SqlStore(make_url(uri).set(password="hunter2").render_as_string(False)).open()
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
