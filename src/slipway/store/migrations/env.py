"""Alembic environment: runs migrations on the synchronous driver of DB_URI.

slipway keeps its revision in `slipway_alembic_version`, so that it can share Quay's
database (Quay's revision stays in `alembic_version`, untouched). Before migrating, the
database is looked at (store/database_kind.py): one that is neither empty, slipway's nor
Quay's is refused; one from before revision 0003 has its version table renamed here, and
revision 0003 renames its tables."""

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from slipway.store.database_kind import (
    DEFAULT_VERSION_TABLE,
    SLIPWAY_VERSION_TABLE,
    DatabaseKind,
    ForeignDatabase,
    inspect_database,
    only_slipway_tables,
    only_slipway_tables_in_quay,
    refusal,
    shown_url,
)
from slipway.store.schema import metadata

config = context.config
target_metadata = metadata


def _move_version_table(connection) -> None:  # type: ignore[no-untyped-def]
    """An unprefixed slipway database: its revision moves to slipway's version table."""
    connection.execute(
        text(f"ALTER TABLE {DEFAULT_VERSION_TABLE} RENAME TO {SLIPWAY_VERSION_TABLE}")
    )
    if connection.dialect.name == "postgresql":
        named = connection.execute(
            text("SELECT 1 FROM pg_constraint WHERE conname = :name"),
            {"name": f"{DEFAULT_VERSION_TABLE}_pkc"},
        ).first()
        if named:
            connection.execute(text(
                f"ALTER TABLE {SLIPWAY_VERSION_TABLE} RENAME CONSTRAINT "
                f"{DEFAULT_VERSION_TABLE}_pkc TO {SLIPWAY_VERSION_TABLE}_pkc"
            ))


def run_migrations_online() -> None:
    section = config.get_section(config.config_ini_section) or {}
    connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        if connection.dialect.name == "postgresql":
            # several managers may start at once on a new database: one migrates, the
            # others wait here and then find the schema current (released on disconnect)
            connection.execute(text("SELECT pg_advisory_lock(hashtext('slipway-migrations'))"))
            connection.commit()
        # looked at after the lock: another manager may just have migrated it
        found = inspect_database(connection)
        connection.commit()
        refused = refusal(found, shown_url(str(connectable.url)))
        if refused:
            raise ForeignDatabase(refused)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            version_table=SLIPWAY_VERSION_TABLE,
            include_object=only_slipway_tables_in_quay if found.kind is DatabaseKind.QUAY
            else only_slipway_tables,
        )
        with context.begin_transaction():
            if found.kind is DatabaseKind.SLIPWAY_UNPREFIXED:
                _move_version_table(connection)
            context.run_migrations()


run_migrations_online()
