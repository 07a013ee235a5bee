"""The start-up messages for the database and the orchestrator from the drivers' errors,
for the cases the serve tests (tests/cli/test_serve_startup_errors.py) do not start a
server for. Each names the key and never a password."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from slipway.config.models import ManagerConfig
from slipway.orchestrator.base import OrchestratorError
from slipway.startup_errors import orchestrator_problem
from slipway.store.open_errors import database_problem

URI = "postgresql://app:s3cret-pw@db.example.com:5433/builds"
SHOWN = "DB_URI postgresql://app:*****@db.example.com:5433/builds"


def _psycopg(text: str) -> OperationalError:
    return OperationalError("connect", {}, Exception(
        f'connection failed: connection to server at "10.0.0.5", port 5433 failed: {text}'))


@pytest.mark.parametrize(("driver", "expected"), [
    ('FATAL:  password authentication failed for user "app"',
     f'PostgreSQL at db.example.com:5433 refused the login ({SHOWN}): password '
     'authentication failed for user "app"; set the user and password in DB_URI'),
    ('FATAL:  role "app" does not exist',
     f'PostgreSQL at db.example.com:5433 has no user "app" ({SHOWN}): create it, or set '
     "the user in DB_URI"),
    ("timeout expired",
     f"no answer from db.example.com:5433 ({SHOWN}): check that PostgreSQL runs there and "
     "that a firewall lets the connection through, or set DB_URI to where it runs"),
])
def test_database_problems_name_db_uri(driver: str, expected: str) -> None:
    assert database_problem(_psycopg(driver), URI) == expected


def test_an_unresolvable_database_host() -> None:
    exc = OperationalError("connect", {}, Exception(
        'connection failed: could not translate host name "db.example.com" to address: '
        "Name or service not known"))
    assert database_problem(exc, URI) == (
        f"cannot resolve the host 'db.example.com' ({SHOWN}): check the host in DB_URI")


def test_an_sqlite_file_that_cannot_be_opened() -> None:
    exc = OperationalError("connect", {}, Exception("unable to open database file"))
    assert database_problem(exc, "sqlite:////readonly/slipway.db") == (
        "cannot open the SQLite file /readonly/slipway.db (DB_URI sqlite:////readonly/"
        "slipway.db): unable to open database file; make its directory writable, or set "
        "DB_URI (or DATA_DIR) to a writable place")


def _manager() -> ManagerConfig:
    return ManagerConfig.model_validate({
        "EXECUTORS": [{"EXECUTOR": "local"}],
        "ORCHESTRATOR": {"REDIS_HOST": "redis.example.com", "REDIS_PASSWORD": "s3cret-pw"}})


def test_a_redis_password_refused() -> None:
    exc = OrchestratorError("Redis at redis.example.com:6379 (db 0) refused authentication "
                            "(AuthenticationError: invalid password); check "
                            "ORCHESTRATOR.REDIS_PASSWORD")
    assert orchestrator_problem(exc, _manager()) == (
        "Redis at redis.example.com:6379 refused the login (ORCHESTRATOR.REDIS_PASSWORD): "
        "set the password that Redis expects")


def test_an_unresolvable_redis_host() -> None:
    try:
        try:
            raise ConnectionError("Error -2 connecting to redis.example.com:6379. Name or "
                                  "service not known.")
        except ConnectionError:
            raise OrchestratorError("Redis at redis.example.com:6379 (db 0) failed") from None
    except OrchestratorError as exc:
        problem = orchestrator_problem(exc, _manager())
    assert problem == ("cannot resolve the host 'redis.example.com' "
                       "(ORCHESTRATOR.REDIS_HOST): check the host name")


def test_a_password_the_driver_quotes_is_masked() -> None:
    problem = database_problem(_psycopg("FATAL:  bad option near s3cret-pw"), URI)
    assert "s3cret-pw" not in problem
    assert problem == (f"cannot open the database on db.example.com:5433 ({SHOWN}): bad "
                       "option near *****; check DB_URI")
