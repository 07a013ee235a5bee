"""What `SlipwayServer` asks of a backend, whichever it is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from slipway.manager.build_pack import PackParts
from slipway.store.interfaces import Store
from slipway.store.records import BuildRecord


class BackendError(Exception):
    """The backend cannot run as configured; the message says why and names the key."""


class SignedLinks(Protocol):
    """slipway's own signed download links (api/filedrop.py), for what a worker fetches
    through slipway's API."""

    def context(self, record: BuildRecord) -> str:
        """The build's archive URL, or a link to its uploaded context."""

    def file(self, file_id: str, purpose: str) -> str:
        """A link to a file the store knows by `file_id` (`purpose` goes into the
        token)."""


class BackgroundService(Protocol):
    """Work a backend needs done beside the manager while builds run."""

    def start(self) -> None:
        ...

    async def stop(self) -> None:
        ...


Cancel = Callable[[str], Awaitable[Any]]


class Backend(PackParts, Protocol):
    """The store, the backend's part of every BuildPack (`PackParts`), its start-up
    checks and banner, and the services it runs."""

    @property
    def store(self) -> Store[Any]:
        ...

    @property
    def banner(self) -> str | None:
        """What `slipway serve` says of it at start (None: nothing)."""

    async def open(self, links: SignedLinks) -> None:
        """Ready the store (migrations) and what else the backend reads; BackendError
        when it cannot run. `links` signs the URLs handed to workers."""

    def check_builds(self) -> None:
        """BackendError when this process cannot run builds (asked only when it runs a
        build manager)."""

    def services(self, cancel: Cancel, wake: Callable[[], None] | None = None
                 ) -> list[BackgroundService]:
        """What must run while the build manager runs; `cancel(build_id)` cancels a
        build as slipway's API does, `wake()` makes the manager's scheduler look at the
        queue at once."""

    async def close(self) -> None:
        ...
