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

# what a test must have to share the host's container image store: `make test` runs the
# files with such a test in one sequence, beside the rest (scripts/run-tests.sh)
IMAGE_STORE_MARKS = ("podman",)
IMAGE_STORE_DIRS = ("faults",)  # the fault suite (tests/faults/conftest.py marks it later)
IMAGE_STORE_FIXTURES = frozenset({"registry", "auth_registry", "base_image", "images"})
# files that build with podman without saying so in a mark (the benchmarks' e2e builds)
IMAGE_STORE_FILES = ("test_benchmarks_smoke.py",)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `image_store` every test of a file where one test uses the host's image store
    (a podman mark, the fault suite, a registry or base image fixture): a whole file, so
    that its module-scoped fixtures and its order stay in one process."""
    files = {
        item.path for item in items
        if item.path.name in IMAGE_STORE_FILES or item.path.parent.name in IMAGE_STORE_DIRS
        or any(item.get_closest_marker(mark) for mark in IMAGE_STORE_MARKS)
        or IMAGE_STORE_FIXTURES & set(getattr(item, "fixturenames", ()))
    }
    for item in items:
        if item.path in files:
            item.add_marker(pytest.mark.image_store)


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
