"""slipway's own tables (SQLite or PostgreSQL) as the backend: builds submitted to
slipway's API, contexts uploaded to its file drop, pushes with REGISTRY_CREDENTIALS."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from slipway.backends.base import BackendError, BackgroundService, Cancel, SignedLinks
from slipway.backends.data_lifecycle import (
    HousekeepingService,
    housekeeping_policy,
    log_archive_from_config,
)
from slipway.config.models import AppConfig
from slipway.manager.build_pack import BuildPackUnavailable, WorkerAccess
from slipway.store.database_kind import ForeignDatabase
from slipway.store.errors import SecretsUnavailable
from slipway.store.facade import SqlStore
from slipway.store.housekeeping import Housekeeping
from slipway.store.interfaces import BuildSecrets
from slipway.store.open_errors import DATABASE_ERRORS, database_problem
from slipway.store.records import BuildRecord
from slipway.triggers.builds import SOURCE, git_package


def trigger_id_of(record: BuildRecord) -> str | None:
    """The id of the slipway trigger that started the build, if one did."""
    trigger = record.trigger or {}
    if trigger.get("source") != SOURCE:
        return None
    return str(trigger.get("id") or "") or None


def configured_access(config: AppConfig, record: BuildRecord) -> WorkerAccess:
    """The login REGISTRY_CREDENTIALS holds for the build's registry, if any."""
    credentials = (config.REGISTRY_CREDENTIALS or {}).get(record.registry)
    if credentials is None:
        return WorkerAccess()
    return WorkerAccess(push_username=credentials.username,
                        push_password=credentials.password.get_secret_value())


async def stored_secrets(secrets: BuildSecrets[Any], record: BuildRecord
                         ) -> dict[str, str]:
    try:
        return await secrets.get(record.id)
    except SecretsUnavailable as exc:
        raise BuildPackUnavailable(str(exc)) from exc


class SqlBackend:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.store = SqlStore(config.DB_URI, log_archive_from_config(config))
        self._links: SignedLinks | None = None

    @property
    def banner(self) -> str | None:
        return None

    async def open(self, links: SignedLinks) -> None:
        self._links = links
        try:
            await self.store.open()
        except ForeignDatabase as exc:
            raise BackendError(str(exc)) from None
        except DATABASE_ERRORS as exc:  # one line naming DB_URI
            raise BackendError(database_problem(exc, self.config.DB_URI)) from None

    def check_builds(self) -> None:
        pass

    def services(self, cancel: Cancel, wake: Callable[[], None] | None = None
                 ) -> list[BackgroundService]:
        """The housekeeping passes: log archive, retention, contexts (RETENTION.INTERVAL)."""
        return [HousekeepingService(self.housekeeping(), self.config.RETENTION.INTERVAL)]

    def housekeeping(self) -> Housekeeping:
        """Housekeeping as configured (LOG_ARCHIVE, RETENTION): the service's, and
        `slipway gc`'s."""
        return self.store.housekeeping(housekeeping_policy(self.config))

    async def close(self) -> None:
        await self.store.close()

    # --- the BuildPack's part (manager/build_pack.py PackParts) --------------------------

    def package_url(self, record: BuildRecord) -> str:
        """The archive URL given at submit, or a signed link to the uploaded context ("" for
        a trigger's build: its worker clones the commit)."""
        if trigger_id_of(record) is not None:
            return ""
        assert self._links is not None, "package_url before open"
        return self._links.context(record)

    async def access(self, record: BuildRecord) -> WorkerAccess:
        """REGISTRY_CREDENTIALS' login and, for a trigger's build, the commit to clone with
        the trigger's credentials, read now (never stored with the build)."""
        access = configured_access(self.config, record)
        trigger_id = trigger_id_of(record)
        if trigger_id is None:
            return access
        trigger = await self.store.triggers.get(trigger_id)
        if trigger is None:
            raise BuildPackUnavailable(
                f"trigger {trigger_id} of build {record.id} was deleted; its credentials "
                "to clone the repository went with it")
        try:
            credentials = await self.store.triggers.credentials(trigger_id)
        except SecretsUnavailable as exc:
            raise BuildPackUnavailable(str(exc)) from exc
        commit = str((record.trigger_metadata or {}).get("commit") or "")
        return dataclasses.replace(access, git_package=git_package(trigger, credentials,
                                                                   commit))

    async def secrets(self, record: BuildRecord) -> dict[str, str]:
        return await stored_secrets(self.store.secrets, record)
