"""The overview's reads (store/overview.py) use the indexes migration 0006 adds, on SQLite
and on PostgreSQL: what EXPLAIN says of each statement on a migrated database.

PostgreSQL plans an empty table as a sequential scan whatever its indexes; with
`enable_seqscan = off` its plan shows whether an index can serve the statement at all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text
from support.postgres_server import PostgresServer

from slipway.store.database import sync_url
from slipway.store.facade import SqlStore
from slipway.store.overview import (
    failures_statement,
    queue_statement,
    repositories_statement,
    workers_statement,
)

STATEMENTS: dict[str, tuple[Any, set[str]]] = {
    # the statement (for every namespace, and for one), and the indexes its plan may use
    "repositories": (lambda ns: repositories_statement(ns, 500),
                     {"ix_builds_repo_started_phase"}),
    "workers": (lambda ns: workers_statement(), {"ix_builds_phase_executor"}),
    "queue": (lambda ns: queue_statement(ns, time.time()), {"ix_queue_namespace"}),
    "failures": (lambda ns: failures_statement(time.time() - 3600, ns),
                 {"ix_builds_completed", "ix_builds_phase_executor"}),
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path}/o.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        uri = server.create_database()
    store = await SqlStore(uri).open()  # migrated to the newest revision
    await store.close()
    return uri


def _plan(db_uri: str, statement: Any) -> str:
    engine = create_engine(sync_url(db_uri), poolclass=pool.NullPool)
    try:
        sql = str(statement.compile(dialect=engine.dialect,
                                    compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
                return "\n".join(str(r[-1]) for r in rows)
            conn.execute(text("SET enable_seqscan = off"))
            return "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {sql}")).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", sorted(STATEMENTS))
@pytest.mark.parametrize("namespaces", [None, ["acme"]], ids=["all", "one"])
def test_each_overview_read_uses_its_index(
    db_uri: str, name: str, namespaces: list[str] | None
) -> None:
    build, indexes = STATEMENTS[name]
    if name == "failures" and namespaces:
        # a namespace's builds are found through its repositories' index
        indexes = {"ix_builds_repo_started_phase"}
    plan = _plan(db_uri, build(namespaces))
    used = {ix for ix in indexes if ix in plan}
    assert used == indexes, f"{name}: {plan}"
