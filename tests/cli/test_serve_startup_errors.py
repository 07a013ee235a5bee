"""A database or an orchestrator that cannot be reached stops `slipway serve` with one
line naming the setting to change and how, as an address in use does: no traceback, no
driver help link, no password (src/slipway/startup_errors.py, src/slipway/store/open_errors.py)."""

from __future__ import annotations

from pathlib import Path

from support.postgres_server import PostgresServer
from support.registry import free_port
from support.serve_process import ServeProcess

from slipway.store.facade import SqlStore

PASSWORD = "hunter2-not-shown"


async def _start_up_failure(serve: ServeProcess) -> tuple[int, list[str]]:
    serve.start()
    code = await serve.exit_code()
    return code, serve.output().strip().splitlines()


async def test_an_unknown_database_names_db_uri(tmp_path: Path, postgres: PostgresServer) -> None:
    uri = postgres.uri_for("nosuchdb").replace("@", f":{PASSWORD}@", 1)
    at = f"127.0.0.1:{postgres.port}"
    code, lines = await _start_up_failure(ServeProcess(tmp_path, {"DB_URI": uri}))
    assert code == 1
    assert lines == [
        f'error: slipway could not start: database "nosuchdb" does not exist on {at} '
        f"(DB_URI postgresql://{postgres.user}:*****@{at}/nosuchdb): create it (createdb "
        "nosuchdb, or CREATE DATABASE nosuchdb), or set DB_URI to an existing database"]


async def test_a_database_nobody_serves_names_db_uri(tmp_path: Path) -> None:
    at = f"127.0.0.1:{free_port()}"
    uri = f"postgresql://slipway:{PASSWORD}@{at}/slipway"
    code, lines = await _start_up_failure(ServeProcess(tmp_path, {"DB_URI": uri}))
    assert code == 1
    assert lines == [
        f"error: slipway could not start: nothing accepts connections at {at} (DB_URI "
        f"postgresql://slipway:*****@{at}/slipway): start PostgreSQL there, or set DB_URI "
        "to where it runs"]


async def test_a_redis_nobody_serves_names_the_orchestrator_keys(tmp_path: Path) -> None:
    port = free_port()
    serve = ServeProcess(tmp_path, {"BUILD_MANAGER": ["ephemeral", {
        "EXECUTORS": [{"EXECUTOR": "local"}],
        "ORCHESTRATOR": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": port,
                         "REDIS_PASSWORD": PASSWORD},
    }]})
    # a restart: the database is there already, so the error is all that is said
    store = await SqlStore(f"sqlite:///{serve.config['DATA_DIR']}/slipway.db").open()
    await store.close()
    code, lines = await _start_up_failure(serve)
    assert code == 1
    assert lines == [
        f"error: slipway could not start: nothing accepts connections at 127.0.0.1:{port} "
        "(ORCHESTRATOR.REDIS_HOST, REDIS_PORT): start Redis there, or set REDIS_HOST and "
        "REDIS_PORT under ORCHESTRATOR to where it runs"]
