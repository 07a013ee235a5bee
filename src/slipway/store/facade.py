"""slipway's own tables as the `Store` (store/interfaces.py), built from DB_URI: SQLite or
PostgreSQL, one engine (`Database`) under every store."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from slipway.store.api_tokens import ApiTokenStore
from slipway.store.attestations import AttestationStore
from slipway.store.audit import AuditLogStore
from slipway.store.build_changes import BuildChanges
from slipway.store.builds import BuildStore
from slipway.store.database import Database, SqlConnection
from slipway.store.database_size import ensure_incremental_vacuum
from slipway.store.housekeeping import Housekeeping, HousekeepingPolicy
from slipway.store.interfaces import Store
from slipway.store.keys import SigningKeyStore
from slipway.store.log_archive import LogArchive
from slipway.store.logs import BuildLogs
from slipway.store.overview import BuildOverview
from slipway.store.queue import BuildQueue
from slipway.store.secrets import BuildSecretStore
from slipway.store.shared_transactions import SharedTransactions
from slipway.store.traces import BuildTraceStore
from slipway.store.triggers import TriggerStore
from slipway.store.uploads import UploadStore


class SqlStore:
    def __init__(self, db_uri: str, log_archive: LogArchive | None = None) -> None:
        self.db = Database(db_uri)
        self.queue = BuildQueue(self.db)
        self.builds = BuildStore(self.db)
        # reads of archived logs fall through to `log_archive` (store/logs.py)
        self.log_archive = log_archive
        self.logs = BuildLogs(self.db, log_archive)
        self.tokens = ApiTokenStore(self.db)
        self.audit = AuditLogStore(self.db)
        self.uploads = UploadStore(self.db)
        self.keys = SigningKeyStore(self.db)
        self.overview = BuildOverview(self.db)
        self.secrets = BuildSecretStore(self.db)
        # build triggers: slipway's own (Quay mode keeps Quay's), sealed with the same key
        self.triggers = TriggerStore(self.db, self.secrets)
        self.attestations: AttestationStore | None = AttestationStore(self.db)
        self.traces = BuildTraceStore(self.db)

    @property
    def changes(self) -> BuildChanges:
        return self.db.changes

    @property
    def shares_lookups(self) -> bool:
        # SQLite reads by key at once on the loop's thread (Database.lookup)
        return not self.db.is_sqlite

    def write(self) -> AbstractAsyncContextManager[SqlConnection]:
        return self.db.write()

    def shared_writes(self) -> SharedTransactions:
        return SharedTransactions(self.db, self.queue)

    def housekeeping(self, policy: HousekeepingPolicy) -> Housekeeping:
        """Archive, retention and clean-up passes over these tables (store/housekeeping.py)."""
        return Housekeeping(self.db, self.logs, self.log_archive, policy)

    async def open(self) -> SqlStore:
        await self.db.migrate()
        # space freed by retention is given back after each pass (store/database_size.py)
        await asyncio.to_thread(ensure_incremental_vacuum, self.db.db_uri)
        return self

    async def ping(self) -> bool:
        return await self.db.ping()

    async def close(self) -> None:
        await self.db.close()


def _is_a_store(store: SqlStore) -> Store[SqlConnection]:
    return store  # mypy checks here that SqlStore keeps the Store protocol
