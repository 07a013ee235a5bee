"""One object holding every store, built from DB_URI."""

from __future__ import annotations

from slipway.store.builds import BuildStore
from slipway.store.database import Database
from slipway.store.keys import SigningKeyStore
from slipway.store.logs import BuildLogs
from slipway.store.overview import BuildOverview
from slipway.store.queue import BuildQueue
from slipway.store.secrets import BuildSecretStore


class Store:
    def __init__(self, db_uri: str) -> None:
        self.db = Database(db_uri)
        self.queue = BuildQueue(self.db)
        self.builds = BuildStore(self.db, self.queue)
        self.logs = BuildLogs(self.db)
        self.keys = SigningKeyStore(self.db)
        self.overview = BuildOverview(self.db)
        self.secrets = BuildSecretStore(self.db)

    async def open(self) -> Store:
        await self.db.migrate()
        return self

    async def close(self) -> None:
        await self.db.close()
