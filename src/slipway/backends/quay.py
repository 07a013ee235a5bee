"""Quay mode as the backend: Quay's queue, build rows and build-log Redis behind the store
(quay/store.py), the build's own token to push with, Quay's log view kept live
(quay/mirror.py) (docs/quay-contract.md)."""

from __future__ import annotations

from collections.abc import Callable

from slipway.backends.base import BackendError, BackgroundService, Cancel, SignedLinks
from slipway.backends.sql import configured_access, stored_secrets
from slipway.config.models import AppConfig
from slipway.manager.build_pack import BuildPackUnavailable, GitPackage, WorkerAccess
from slipway.quay.buildpack import record_package_url
from slipway.quay.encryption import FieldEncrypter
from slipway.quay.errors import QuayModeError
from slipway.quay.mirror import QuayMirror
from slipway.quay.queue_watch import QueueWatch
from slipway.quay.store import QuayStore, shown_database
from slipway.secret import reveal
from slipway.store.database_kind import ForeignDatabase
from slipway.store.open_errors import DATABASE_ERRORS, database_problem
from slipway.store.records import BuildRecord

NO_SECRET_KEY = ("DATABASE_SECRET_KEY is not set: in Quay mode it decrypts the build "
                 "tokens Quay's builds push with; copy it from Quay's config.yaml")


class QuayBackend:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.store = QuayStore(config)
        secret_key = reveal(config.DATABASE_SECRET_KEY) if config.DATABASE_SECRET_KEY else ""
        self.encrypter = FieldEncrypter(secret_key) if secret_key else None

    @property
    def banner(self) -> str | None:
        return (f"serving the builds of Quay at {self.config.SERVER_HOSTNAME} "
                f"from {shown_database(self.config.DB_URI)}")

    async def open(self, links: SignedLinks) -> None:
        """BackendError (naming the key) when BUILDLOGS_REDIS does not answer or the
        user-file storage has a driver slipway cannot use."""
        try:
            await self.store.open(link=lambda file_id: links.file(file_id, "quay-userfile"))
        except (QuayModeError, ForeignDatabase) as exc:
            raise BackendError(str(exc)) from None
        except DATABASE_ERRORS as exc:  # one line naming DB_URI
            raise BackendError(database_problem(exc, self.config.DB_URI)) from None

    def check_builds(self) -> None:
        if self.encrypter is None:
            raise BackendError(NO_SECRET_KEY)

    def services(self, cancel: Cancel, wake: Callable[[], None] | None = None
                 ) -> list[BackgroundService]:
        """The mirror: every log entry copied to BUILDLOGS_REDIS, Quay's cancels seen;
        and the watch of Quay's queue that wakes the scheduler for a new build."""
        store = self.store
        services: list[BackgroundService] = [
            QuayMirror(store.db, store.quay_logs, store.quay_builds, cancel)]
        manager = self.config.manager
        if wake is not None and manager is not None:
            services.append(QueueWatch(store.db, wake, manager.QUAY_QUEUE_WATCH_INTERVAL))
        return services

    async def close(self) -> None:
        await self.store.close()

    # --- the BuildPack's part (manager/build_pack.py PackParts) --------------------------

    def package_url(self, record: BuildRecord) -> str:
        """Quay's BuildJob get_build_package_url: archive_url, else the user file of
        resource_key."""
        return record_package_url(record, self.store.userfiles)

    async def access(self, record: BuildRecord) -> WorkerAccess:
        """What Quay's manager hands the worker besides the record's fields: the build's
        access token as push_token and pull_token (quay-builder and slipway's worker log
        in as `$token` with it) and, for a trigger with a deploy key, the git repository
        to clone instead of a package. Whatever stops it refuses the registration."""
        try:
            build = await self.store.quay_builds.get(record.id)
            if build is None:
                raise QuayModeError(f"build {record.id} is no longer in Quay's database")
            if self.encrypter is None:
                raise QuayModeError(
                    "DATABASE_SECRET_KEY is not set: it decrypts the build tokens Quay's "
                    "builds push with; copy it from Quay's config.yaml")
            token = build.access_token(self.encrypter)
            deploy_key = build.deploy_key(self.encrypter)
        except Exception as exc:
            raise BuildPackUnavailable(str(exc)) from exc
        configured = configured_access(self.config, record)
        return WorkerAccess(
            push_username=configured.push_username, push_password=configured.push_password,
            push_token=token, pull_token=token,
            git_package=None if deploy_key is None
            else GitPackage(url=build.git_url, sha=build.commit_sha, private_key=deploy_key),
        )

    async def secrets(self, record: BuildRecord) -> dict[str, str]:
        return await stored_secrets(self.store.secrets, record)
