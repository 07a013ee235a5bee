"""The CLI tests' fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api_app import LiveApi


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApi]:
    """The API served live for the CLI, its registry 127.0.0.1:5000 (the tests' -t)."""
    server = LiveApi(tmp_path, SERVER_HOSTNAME="127.0.0.1:5000").start()
    try:
        yield server
    finally:
        server.stop()
