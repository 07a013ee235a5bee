"""What a DB_URI holds, found before any migration runs: nothing yet, slipway's tables,
Quay's (with or without slipway's beside them), or something else, which slipway refuses
to touch.

slipway's tables are all named `slipway_*` and its Alembic revision is kept in
`slipway_alembic_version`, so they can share Quay's database without touching Quay's
tables or the revision Quay keeps in `alembic_version`. Databases made before that rename
keep their revision in `alembic_version` under the old table names; they are recognised
here and migrated (store/migrations/env.py, revision 0003)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

SLIPWAY_VERSION_TABLE = "slipway_alembic_version"
# Alembic's default, which Quay keeps (and slipway did before revision 0003)
DEFAULT_VERSION_TABLE = "alembic_version"
SLIPWAY_PREFIX = "slipway_"
# tables every Quay database has, and which no slipway database has
QUAY_MARKER_TABLES = frozenset({"queueitem", "repositorybuild"})
# slipway's own tables that a Quay database never gets (revisions 0009 and 0012 skip them
# there): the build triggers, which are Quay's own in Quay mode (docs/triggers.md), and the
# build traces, kept in memory in Quay mode (docs/traces.md)
STANDALONE_TABLES = frozenset(
    {"slipway_triggers", "slipway_trigger_deliveries", "slipway_commit_statuses",
     "slipway_build_traces"})
# slipway's table names before revision 0003
UNPREFIXED_TABLES = frozenset(
    {"builds", "build_queue", "build_logs", "signing_keys", "uploads", "api_tokens"}
)


class DatabaseKind(enum.Enum):
    EMPTY = "empty"
    SLIPWAY = "slipway"
    # slipway's, from before revision 0003: unprefixed tables, revision in alembic_version
    SLIPWAY_UNPREFIXED = "slipway (old table names)"
    QUAY = "Quay"
    OTHER = "something else"


@dataclass(frozen=True)
class DatabaseFound:
    kind: DatabaseKind
    tables: frozenset[str]
    slipway_revision: str | None = None
    quay_revision: str | None = None

    @property
    def has_slipway_tables(self) -> bool:
        return self.slipway_revision is not None


class ForeignDatabase(Exception):
    """DB_URI names a database slipway must not create its tables in."""


def slipway_revisions() -> frozenset[str]:
    """Every revision of slipway's own migrations."""
    from alembic.script import ScriptDirectory

    from slipway.store.database import MIGRATIONS_DIR

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return frozenset(rev.revision for rev in script.walk_revisions())


def _versions(conn: Connection, table: str, tables: Iterable[str]) -> list[str] | None:
    if table not in tables:
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {table}"))
    return sorted(str(row[0]) for row in rows)


def inspect_database(conn: Connection, revisions: frozenset[str] | None = None) -> DatabaseFound:
    """Classify the database `conn` is connected to (its default schema)."""
    revisions = slipway_revisions() if revisions is None else revisions
    tables = frozenset(inspect(conn).get_table_names())
    ours = _versions(conn, SLIPWAY_VERSION_TABLE, tables)
    default = _versions(conn, DEFAULT_VERSION_TABLE, tables)
    slipway_revision = ours[0] if ours else None
    foreign_revisions = [rev for rev in default or [] if rev not in revisions]
    if tables >= QUAY_MARKER_TABLES:
        kind = DatabaseKind.QUAY if foreign_revisions else DatabaseKind.OTHER
        return DatabaseFound(kind, tables, slipway_revision,
                             foreign_revisions[0] if foreign_revisions else None)
    if default and not foreign_revisions and ours is None and "builds" in tables:
        return DatabaseFound(DatabaseKind.SLIPWAY_UNPREFIXED, tables, default[0])
    if ours is not None and not foreign_revisions:
        return DatabaseFound(DatabaseKind.SLIPWAY, tables, slipway_revision)
    leftover = tables - {DEFAULT_VERSION_TABLE} if not default else tables
    if not leftover:
        return DatabaseFound(DatabaseKind.EMPTY, tables)
    return DatabaseFound(DatabaseKind.OTHER, tables, slipway_revision,
                         foreign_revisions[0] if foreign_revisions else None)


def _listed(names: Iterable[str], most: int = 5) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:most])
    return f"{shown} and {len(ordered) - most} more" if len(ordered) > most else shown


def refusal(found: DatabaseFound, where: str) -> str | None:
    """Why slipway must not migrate the database `found` describes (None: it may).
    `where` names the database (DB_URI, its password hidden)."""
    if found.kind is not DatabaseKind.OTHER:
        return None
    fix = (
        "point DB_URI at an empty database for slipway (e.g. CREATE DATABASE slipway), at "
        "slipway's own, or at Quay's database"
    )
    if found.tables >= QUAY_MARKER_TABLES:
        return (
            f"{where} has Quay's tables (queueitem, repositorybuild) but no Quay revision in "
            f"{DEFAULT_VERSION_TABLE}; it is not a complete Quay database, so slipway "
            f"leaves it alone: run Quay's migrations on it first, or {fix}"
        )
    if found.quay_revision is not None:
        return (
            f"{where} keeps revision {found.quay_revision!r} of another program in "
            f"{DEFAULT_VERSION_TABLE} (tables: {_listed(found.tables)}); slipway will not "
            f"add its tables there; {fix}"
        )
    others = [t for t in found.tables if not t.startswith(SLIPWAY_PREFIX)]
    if not others:
        return (
            f"{where} has slipway's tables ({_listed(found.tables)}) but no "
            f"{SLIPWAY_VERSION_TABLE} saying which revision they are at; restore the "
            f"database from a backup, or {fix}"
        )
    return (
        f"{where} holds {len(others)} table(s) that are neither slipway's nor Quay's "
        f"({_listed(others)}); slipway will not add its tables among them; {fix}"
    )


def only_slipway_tables(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's include_object: autogenerate compares slipway's tables only, so a
    revision generated against Quay's database never drops or alters Quay's. (The
    version table is Alembic's own business.)"""
    if type_ == "table":
        return bool(name and name.startswith(SLIPWAY_PREFIX) and name != SLIPWAY_VERSION_TABLE)
    table = getattr(obj, "table", None)
    table_name = getattr(table, "name", None)
    return table_name is None or str(table_name).startswith(SLIPWAY_PREFIX)


def only_slipway_tables_in_quay(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """`only_slipway_tables` for Quay's database: without the standalone ones."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    if table in STANDALONE_TABLES:
        return False
    return only_slipway_tables(obj, name, type_, reflected, compare_to)


def shown_url(db_uri: str) -> str:
    return make_url(db_uri).render_as_string(hide_password=True)


def database_kind(db_uri: str) -> DatabaseFound:
    """Classify the database of `db_uri` (a synchronous look, before anything else)."""
    from sqlalchemy import create_engine, pool

    from slipway.store.database import sync_url

    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return inspect_database(conn)
    finally:
        engine.dispose()
