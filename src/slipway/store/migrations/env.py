"""Alembic environment: runs migrations on the synchronous driver of DB_URI."""

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from slipway.store.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        if connection.dialect.name == "postgresql":
            # several managers may start at once on a new database: one migrates, the
            # others wait here and then find the schema current (released on disconnect)
            connection.execute(text("SELECT pg_advisory_lock(hashtext('slipway-migrations'))"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
