"""Where a worker downloads a Quay build's uploaded context (Quay's data/userfiles.py):
the file `USERFILES_PATH/<resource_key>` of storage location USERFILES_LOCATION in
DISTRIBUTED_STORAGE_CONFIG.

- LocalStorage: Quay's web app serves the file itself, without authentication, at
  `<PREFERRED_URL_SCHEME>://<SERVER_HOSTNAME>/userfiles/<id>`: that URL, by default.
  With QUAY_USERFILES_SOURCE: mount, slipway reads the file from the storage path
  mounted at the same path on its host (`local_path`), for a link of its own API.
- S3Storage, RadosGWStorage (and RHOCSStorage, which is RadosGW): a presigned GET URL,
  as Quay's storage/cloud.py makes it (boto3, the object key `storage_path/path`
  without a leading slash).
- Any other driver is refused, naming the location and the driver.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from slipway.config.models import AppConfig
from slipway.config.quay import plain_params
from slipway.quay.errors import QuayModeError
from slipway.secret import reveal

SUPPORTED_DRIVERS = ("LocalStorage", "S3Storage", "RadosGWStorage", "RHOCSStorage")
# Quay's route for user files (data/userfiles.py: handler path "userfiles")
USERFILES_ROUTE = "userfiles"


class UserFiles(Protocol):
    def get_file_url(self, resource_key: str, expires_in: int = 300) -> str:
        """A URL the worker can GET for the context `resource_key`."""
        ...

    async def check(self) -> None:
        """Raise QuayModeError (naming the key) if the storage cannot serve contexts."""
        ...


def file_id_path(userfiles_path: str, resource_key: str) -> str:
    """Quay's get_file_id_path: the basename only, so no `..` or absolute path escapes."""
    return os.path.join(userfiles_path or "", os.path.basename(resource_key))


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class LocalParams(_Params):
    storage_path: str


class S3Params(_Params):
    storage_path: str = ""
    s3_bucket: str
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    endpoint_url: str | None = None
    s3_region: str | None = None


class RadosGWParams(_Params):
    hostname: str
    is_secure: bool = True
    storage_path: str = ""
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    bucket_name: str
    port: int | None = None
    region_name: str | None = None


def endpoint_url(hostname: str, port: int | None, is_secure: bool) -> str:
    """Quay's _build_endpoint_url: a scheme added unless given, the port unless present."""
    if not hostname.startswith(("http://", "https://")):
        hostname = ("https://" if is_secure else "http://") + hostname
    if port and not hostname.split(":")[-1].strip(" /").isdigit():
        hostname = f"{hostname}:{port}"
    return hostname


class LocalUserFiles:
    """LocalStorage: Quay's own URL, or (mount) a link made by `link` for a file slipway
    reads from the mounted storage path."""

    def __init__(
        self,
        *,
        location: str,
        storage_path: str,
        userfiles_path: str,
        scheme: str,
        server_hostname: str,
        mounted: bool = False,
        link: Callable[[str], str] | None = None,
    ) -> None:
        self.location = location
        self.storage_path = storage_path
        self.userfiles_path = userfiles_path
        self.base_url = f"{scheme}://{server_hostname}"
        self.mounted = mounted
        self.link = link

    def get_file_url(self, resource_key: str, expires_in: int = 300) -> str:
        file_id = os.path.basename(resource_key)
        if self.mounted and self.link is not None:
            return self.link(file_id)
        return f"{self.base_url}/{USERFILES_ROUTE}/{file_id}"

    def local_path(self, resource_key: str) -> Path:
        """The context's file in the mounted storage path (LocalStorage._init_path)."""
        return Path(self.storage_path) / file_id_path(self.userfiles_path, resource_key)

    async def check(self) -> None:
        if self.mounted and not await asyncio.to_thread(Path(self.storage_path).is_dir):
            raise QuayModeError(
                f"DISTRIBUTED_STORAGE_CONFIG.{self.location}: storage_path "
                f"{self.storage_path!r} is not a directory here; mount Quay's storage at "
                "that path, or set QUAY_USERFILES_SOURCE: quay to let Quay serve contexts"
            )


class S3UserFiles:
    """S3Storage / RadosGWStorage: presigned GET URLs (signed here, no request made)."""

    def __init__(self, *, location: str, driver: str, bucket: str, storage_path: str,
                 userfiles_path: str, client_args: dict[str, Any]) -> None:
        import boto3
        from botocore.config import Config

        self.location = location
        self.driver = driver
        self.bucket = bucket
        self.storage_path = storage_path
        self.userfiles_path = userfiles_path
        args = dict(client_args)
        signature = args.pop("signature_version", None)
        if signature:
            args["config"] = Config(signature_version=signature)
        self.client = boto3.session.Session().client("s3", **args)

    def object_key(self, resource_key: str) -> str:
        """storage/cloud.py _init_path: `storage_path/path`, no leading slash."""
        path = posixpath.join(self.storage_path, file_id_path(self.userfiles_path, resource_key))
        return path[1:] if path.startswith("/") else path

    def get_file_url(self, resource_key: str, expires_in: int = 300) -> str:
        return str(self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(resource_key)},
            ExpiresIn=expires_in,
        ))

    async def check(self) -> None:
        """The bucket is there and the credentials reach it (Quay checks it the same way
        when it first connects)."""
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception as exc:
            raise QuayModeError(
                f"DISTRIBUTED_STORAGE_CONFIG.{self.location}: {self.driver} bucket "
                f"{self.bucket!r} cannot be reached: {_short(exc)}; check the bucket name, "
                "the endpoint and the access keys"
            ) from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _params(model: type[_Params], params: dict[str, Any], where: str, driver: str) -> Any:
    try:
        return model.model_validate(plain_params(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise QuayModeError(
            f"{where}[1].{name}: {first['msg'].lower()} (a parameter of {driver}); "
            f"see Quay's documentation of {driver} for its parameters"
        ) from None


def userfiles_from_config(
    config: AppConfig, *, link: Callable[[str], str] | None = None
) -> UserFiles:
    """The user-file storage of `config`: USERFILES_LOCATION's entry in
    DISTRIBUTED_STORAGE_CONFIG. `link(file_id)` makes slipway's own URL of a file when
    QUAY_USERFILES_SOURCE is mount."""
    location = config.USERFILES_LOCATION
    storages = config.DISTRIBUTED_STORAGE_CONFIG
    if location not in storages:
        known = ", ".join(sorted(storages)) or "none"
        raise QuayModeError(
            f"USERFILES_LOCATION: {location!r} is not a location of "
            f"DISTRIBUTED_STORAGE_CONFIG (locations: {known}); set it to the location "
            "that holds Quay's user files, as in Quay's config.yaml"
        )
    driver, params = storages[location]
    where = f"DISTRIBUTED_STORAGE_CONFIG.{location}"
    if driver == "LocalStorage":
        local = _params(LocalParams, params, where, driver)
        return LocalUserFiles(
            location=location, storage_path=local.storage_path,
            userfiles_path=config.USERFILES_PATH, scheme=config.PREFERRED_URL_SCHEME,
            server_hostname=config.SERVER_HOSTNAME,
            mounted=config.QUAY_USERFILES_SOURCE == "mount", link=link,
        )
    if driver == "S3Storage":
        s3 = _params(S3Params, params, where, driver)
        args: dict[str, Any] = {"signature_version": "s3v4"}
        if s3.host or s3.endpoint_url:
            args["endpoint_url"] = s3.endpoint_url or endpoint_url(s3.host or "", s3.port, True)
        if s3.s3_region:
            args["region_name"] = s3.s3_region
        _keys(args, s3.s3_access_key, s3.s3_secret_key)
        return S3UserFiles(location=location, driver=driver, bucket=s3.s3_bucket,
                           storage_path=s3.storage_path, userfiles_path=config.USERFILES_PATH,
                           client_args=args)
    if driver in ("RadosGWStorage", "RHOCSStorage"):
        rados = _params(RadosGWParams, params, where, driver)
        args = {"endpoint_url": endpoint_url(rados.hostname, rados.port, rados.is_secure)}
        if rados.region_name:
            args["region_name"] = rados.region_name
        _keys(args, rados.access_key, rados.secret_key)
        return S3UserFiles(location=location, driver=driver, bucket=rados.bucket_name,
                           storage_path=rados.storage_path,
                           userfiles_path=config.USERFILES_PATH, client_args=args)
    raise QuayModeError(
        f"{where}: storage driver {driver!r} (of USERFILES_LOCATION) is not supported by "
        f"slipway for build contexts; supported: {', '.join(SUPPORTED_DRIVERS)}"
    )


def _keys(args: dict[str, Any], access: SecretStr | None, secret: SecretStr | None) -> None:
    # no keys: boto3's own credential chain, as Quay's storage does
    access_key, secret_key = reveal(access), reveal(secret)
    if access_key:
        args["aws_access_key_id"] = access_key
    if secret_key:
        args["aws_secret_access_key"] = secret_key
