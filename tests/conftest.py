"""Shared fixtures. Keep them generic: other parts' tests use them too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from support.images import ensure_base_image, podman_available
from support.postgres_server import PostgresServer, postgres_available, running_postgres
from support.registry import Registry, run_registry
from support.task_dump import dump_tasks


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A real docker-registry on a free 127.0.0.1 port, anonymous push/pull."""
    with run_registry() as reg:
        yield reg


@pytest.fixture
def auth_registry() -> Iterator[Registry]:
    """A real docker-registry with htpasswd auth (reg.username / reg.password)."""
    with run_registry(auth=("builder", "correct-horse-battery")) as reg:
        yield reg


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server of the module's own (tests make a database each).
    Tests that stop the server, and Quay mode's, start their own."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def base_image() -> str:
    """localhost/slipway-base:latest, built once (scripts/make-base-image.sh)."""
    if not podman_available():
        pytest.skip("podman/buildah are not installed")
    return ensure_base_image()


@pytest.fixture(autouse=True)
def _cli_config_home(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers a test starts add their CLI context to $XDG_CONFIG_HOME/slipway/cli.json:
    a directory per test, never the user's own (tests that need one set their own)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


HANG_REPORT_AFTER_S = 60


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def report_hung_tasks() -> AsyncIterator[None]:
    """pytest-timeout dumps threads only; when a test hangs, print where each asyncio task
    waits, so a CI log shows the await that never returned."""

    def dump() -> None:
        dump_tasks(f"asyncio tasks after {HANG_REPORT_AFTER_S}s")

    handle = asyncio.get_running_loop().call_later(HANG_REPORT_AFTER_S, dump)
    yield
    handle.cancel()
