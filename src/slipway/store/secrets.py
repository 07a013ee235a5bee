"""A build's secrets at rest: one row per build, its {id: value} encrypted (Fernet), gone
when the build ends (docs/configuration.md, BUILD_SECRETS_KEY)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select

from slipway.store.database import Database, SqlConnection
from slipway.store.errors import SecretsUnavailable
from slipway.store.rerun import rerun_if_connection_lost
from slipway.store.schema import build_secrets as s

__all__ = ["BuildSecretStore", "SecretsUnavailable"]


class BuildSecretStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._fernet: Fernet | None = None

    def unlock(self, key: bytes) -> None:
        """Use `key` (urlsafe base64 of 32 bytes) from now on."""
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretsUnavailable(
                "BUILD_SECRETS_KEY is not a Fernet key (urlsafe base64 of 32 bytes); make "
                "one with: python -c 'import base64,os; "
                "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
            ) from None

    def _key(self) -> Fernet:
        if self._fernet is None:
            raise SecretsUnavailable("this process has no key for build secrets")
        return self._fernet

    async def put(self, conn: SqlConnection, build_id: str, values: Mapping[str, str]) -> None:
        """Store `values` in the caller's transaction (the one creating the build)."""
        sealed = self._key().encrypt(json.dumps(dict(values)).encode()).decode()
        await conn.execute(s.insert().values(build_id=build_id, sealed=sealed,
                                             created=time.time()))

    def seal(self, values: Mapping[str, str]) -> str:
        """`values` encrypted with this key (a trigger's credentials: store/triggers.py)."""
        return self._key().encrypt(json.dumps(dict(values)).encode()).decode()

    def unseal(self, sealed: str, what: str) -> dict[str, str]:
        try:
            values = json.loads(self._key().decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsUnavailable(
                f"the secrets of {what} were stored with another key: every manager and "
                "API process needs the same BUILD_SECRETS_KEY"
            ) from None
        return {str(k): str(v) for k, v in values.items()}

    @rerun_if_connection_lost
    async def get(self, build_id: str) -> dict[str, str]:
        """The build's secrets; {} when it has none (or they are gone: it ended)."""
        async with self.db.read() as conn:
            sealed = await conn.scalar(select(s.c.sealed).where(s.c.build_id == build_id))
        if sealed is None:
            return {}
        try:
            values = json.loads(self._key().decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsUnavailable(
                f"the secrets of build {build_id} were stored with another key: every "
                "manager and API process needs the same BUILD_SECRETS_KEY"
            ) from None
        return {str(k): str(v) for k, v in values.items()}

    @staticmethod
    async def delete(conn: SqlConnection, build_id: str) -> None:
        await conn.execute(delete(s).where(s.c.build_id == build_id))
