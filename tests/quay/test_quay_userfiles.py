"""Where a worker downloads a Quay build's context: Quay's own /userfiles/ URL for
LocalStorage, presigned GETs for S3Storage and RadosGWStorage (real boto3 against moto in
server mode, the file fetched over HTTP), and clear refusals naming the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from support.moto_server import moto_server

from slipway.config import AppConfig
from slipway.quay.errors import QuayModeError
from slipway.quay.userfiles import LocalUserFiles, S3UserFiles, userfiles_from_config

ACCESS, SECRET = "AKIAQUAYTESTACCESS", "quay-test-secret-key"


def config(**keys: Any) -> AppConfig:
    return AppConfig.model_validate(
        {"SERVER_HOSTNAME": "quay.example.test", "PREFERRED_URL_SCHEME": "https", **keys})


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _bucket(moto: str, name: str, key: str, content: bytes) -> None:
    s3 = boto3.client("s3", endpoint_url=moto, aws_access_key_id=ACCESS,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key=key, Body=content)


def test_local_storage_is_served_by_quay_itself() -> None:
    files = userfiles_from_config(config(
        USERFILES_LOCATION="local_us",
        DISTRIBUTED_STORAGE_CONFIG={"local_us": ["LocalStorage",
                                                 {"storage_path": "/datastorage/registry"}]},
    ))
    assert isinstance(files, LocalUserFiles)
    # Quay's handler route, the basename of the key only
    assert files.get_file_url("3f0c-aa") == "https://quay.example.test/userfiles/3f0c-aa"
    assert files.get_file_url("../../etc/passwd") == "https://quay.example.test/userfiles/passwd"
    assert files.local_path("3f0c-aa") == Path("/datastorage/registry/userfiles/3f0c-aa")


async def test_mounted_local_storage_is_served_by_slipway(tmp_path: Path) -> None:
    storage = {"local_us": ["LocalStorage", {"storage_path": str(tmp_path / "registry")}]}
    files = userfiles_from_config(
        config(DISTRIBUTED_STORAGE_CONFIG=storage, QUAY_USERFILES_SOURCE="mount"),
        link=lambda file_id: f"https://builds.example.test/quay-userfiles/{file_id}",
    )
    assert files.get_file_url("f00d") == "https://builds.example.test/quay-userfiles/f00d"
    with pytest.raises(QuayModeError) as info:
        await files.check()  # not mounted yet
    assert "DISTRIBUTED_STORAGE_CONFIG.local_us: storage_path" in str(info.value)
    assert "QUAY_USERFILES_SOURCE: quay" in str(info.value)
    (tmp_path / "registry" / "userfiles").mkdir(parents=True)
    (tmp_path / "registry" / "userfiles" / "f00d").write_bytes(b"FROM scratch\n")
    await files.check()
    assert isinstance(files, LocalUserFiles)
    assert files.local_path("f00d").read_bytes() == b"FROM scratch\n"


async def test_s3_storage_gives_a_presigned_url_that_downloads_the_context(moto: str) -> None:
    _bucket(moto, "quay-s3", "registry/userfiles/f00d", b"context bytes")
    files = userfiles_from_config(config(
        USERFILES_LOCATION="default",
        DISTRIBUTED_STORAGE_CONFIG={"default": ["S3Storage", {
            "storage_path": "/registry", "s3_bucket": "quay-s3", "s3_access_key": ACCESS,
            "s3_secret_key": SECRET, "endpoint_url": moto, "s3_region": "us-east-1"}]},
    ))
    assert isinstance(files, S3UserFiles)
    assert files.object_key("f00d") == "registry/userfiles/f00d"  # no leading slash
    await files.check()
    url = files.get_file_url("f00d", expires_in=300)
    assert "X-Amz-Signature=" in url and SECRET not in url  # signature version 4
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"context bytes"


async def test_radosgw_storage_from_host_and_port(moto: str) -> None:
    _bucket(moto, "quay-rados", "datastorage/userfiles/f00d", b"rados bytes")
    host, port = moto.removeprefix("http://").split(":")
    files = userfiles_from_config(config(
        USERFILES_LOCATION="ceph",
        DISTRIBUTED_STORAGE_CONFIG={"ceph": ["RadosGWStorage", {
            "hostname": host, "port": int(port), "is_secure": False,
            "storage_path": "/datastorage", "bucket_name": "quay-rados",
            "access_key": ACCESS, "secret_key": SECRET}]},
    ))
    await files.check()
    url = files.get_file_url("f00d")
    assert url.startswith(f"http://{host}:{port}/")
    assert httpx.get(url).content == b"rados bytes"


async def test_a_missing_bucket_is_named_without_the_keys(moto: str) -> None:
    files = userfiles_from_config(config(
        USERFILES_LOCATION="default",
        DISTRIBUTED_STORAGE_CONFIG={"default": ["S3Storage", {
            "s3_bucket": "no-such-bucket", "s3_access_key": ACCESS, "s3_secret_key": SECRET,
            "endpoint_url": moto}]},
    ))
    with pytest.raises(QuayModeError) as info:
        await files.check()
    message = str(info.value)
    assert message.startswith("DISTRIBUTED_STORAGE_CONFIG.default: S3Storage bucket "
                              "'no-such-bucket' cannot be reached")
    assert SECRET not in message and ACCESS not in message


def test_an_unsupported_driver_is_refused_naming_the_location_and_driver() -> None:
    with pytest.raises(QuayModeError) as info:
        userfiles_from_config(config(
            USERFILES_LOCATION="azure",
            DISTRIBUTED_STORAGE_CONFIG={"azure": ["AzureStorage", {"azure_container": "c"}]},
        ))
    assert str(info.value) == (
        "DISTRIBUTED_STORAGE_CONFIG.azure: storage driver 'AzureStorage' (of "
        "USERFILES_LOCATION) is not supported by slipway for build contexts; supported: "
        "LocalStorage, S3Storage, RadosGWStorage, RHOCSStorage")


def test_a_location_that_is_not_configured_is_named() -> None:
    expected = (r"USERFILES_LOCATION: 'local_us' is not a location of "
                r"DISTRIBUTED_STORAGE_CONFIG \(locations: default\)")
    with pytest.raises(QuayModeError, match=expected):
        userfiles_from_config(config(DISTRIBUTED_STORAGE_CONFIG={
            "default": ["LocalStorage", {"storage_path": "/x"}]}))


def test_a_missing_driver_parameter_is_named() -> None:
    with pytest.raises(QuayModeError, match=r"DISTRIBUTED_STORAGE_CONFIG.default\[1\].s3_bucket: "
                                            r"field required \(a parameter of S3Storage\)"):
        userfiles_from_config(config(
            USERFILES_LOCATION="default",
            DISTRIBUTED_STORAGE_CONFIG={"default": ["S3Storage", {"storage_path": "/r"}]},
        ))
