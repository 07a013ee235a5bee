"""Shared fixtures. Keep them generic: other parts' tests use them too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.images import ensure_base_image, podman_available
from support.registry import Registry, run_registry


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


@pytest.fixture(scope="session")
def base_image() -> str:
    """localhost/slipway-base:latest, built once (scripts/make-base-image.sh)."""
    if not podman_available():
        pytest.skip("podman/buildah are not installed")
    return ensure_base_image()
