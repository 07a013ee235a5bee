"""The backend of this process, chosen once at start from DB_URI."""

from __future__ import annotations

import asyncio
import logging

from slipway.backends.base import Backend
from slipway.backends.sql import SqlBackend
from slipway.config.models import AppConfig
from slipway.store.database_kind import DatabaseKind, database_kind

log = logging.getLogger("slipway.server")


async def choose_backend(config: AppConfig) -> Backend:
    """Quay mode when DB_URI is Quay's database (store/database_kind.py); slipway's own
    tables otherwise. Not opened yet (`Backend.open`)."""
    if not config.DB_URI.startswith("postgresql"):
        return SqlBackend(config)
    try:
        found = await asyncio.to_thread(database_kind, config.DB_URI)
    except Exception:  # unreachable: the migration says so, naming DB_URI
        return SqlBackend(config)
    if found.kind is not DatabaseKind.QUAY:
        return SqlBackend(config)
    from slipway.backends.quay import QuayBackend  # Quay's modules only where they run

    quay = QuayBackend(config)
    log.info("%s", quay.banner)
    return quay
