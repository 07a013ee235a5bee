"""Quay's own config.yaml keys that Quay mode reads: Quay's defaults, messages naming the
key for bad values, secrets masked in `slipway config check`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.config import ConfigError, load_config
from slipway.config.quay import driver_connect_args


@pytest.fixture(autouse=True)
def _data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_quays_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "SERVER_HOSTNAME: quay.example.com\n")).config
    assert config.BUILDLOGS_REDIS.address == "localhost:6379"
    assert config.PREFERRED_URL_SCHEME == "http"
    assert (config.USERFILES_LOCATION, config.USERFILES_PATH) == ("local_us", "userfiles/")
    assert (config.LOG_ARCHIVE_LOCATION, config.LOG_ARCHIVE_PATH) == ("local_us", "logarchive/")
    assert config.DOCKERFILE_BUILD_QUEUE_NAME == "dockerfilebuild"
    assert config.NOTIFICATION_QUEUE_NAME == "notification"
    assert config.REGISTRY_STATE == "normal"
    assert config.SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD == 100
    assert config.SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD == 5
    assert config.DATABASE_SECRET_KEY is None and config.QUAY_USERFILES_SOURCE == "quay"


def test_bad_values_are_named_by_their_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, """\
            PREFERRED_URL_SCHEME: ftp
            REGISTRY_STATE: frozen
            BUILDLOGS_REDIS: {host: redis, port: many, password: hunter2}
            DISTRIBUTED_STORAGE_CONFIG:
              default: S3Storage
            SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD: -1
            """))
    messages = info.value.messages
    assert "PREFERRED_URL_SCHEME: 'ftp' is not allowed; allowed: 'http' or 'https'; write " \
           "e.g. PREFERRED_URL_SCHEME: https" in messages
    assert any(m.startswith("REGISTRY_STATE: 'frozen' is not allowed") for m in messages)
    assert any(m.startswith("BUILDLOGS_REDIS.port: 'many' is not a whole number")
               for m in messages)
    assert any(m.startswith("DISTRIBUTED_STORAGE_CONFIG.default: 'S3Storage' is not a storage "
                            "location") for m in messages)
    assert any(m.startswith("SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD: -1 is out "
                            "of range") for m in messages)
    assert not any("hunter2" in m for m in messages)


def test_secrets_are_masked_in_config_check(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        DATABASE_SECRET_KEY: e9bd34f4-900c-436a-979e-7530e5d74ac8
        BUILDLOGS_REDIS: {host: redis, password: redis-pw}
        DB_CONNECTION_ARGS: {sslmode: verify-full, sslpassword: key-pw, threadlocals: true}
        DISTRIBUTED_STORAGE_CONFIG:
          default: [S3Storage, {s3_bucket: b, s3_access_key: AKIAX, s3_secret_key: s3-pw}]
        """)
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.stderr
    for secret in ("e9bd34f4", "redis-pw", "key-pw", "AKIAX", "s3-pw"):
        assert secret not in result.stdout
    effective = yaml.safe_load(result.stdout)
    assert effective["DISTRIBUTED_STORAGE_CONFIG"]["default"] == [
        "S3Storage", {"s3_bucket": "b", "s3_access_key": "*****", "s3_secret_key": "*****"}]
    # what reaches the database driver: Quay's pool settings dropped, secrets in clear
    config = load_config(path).config
    assert driver_connect_args(config.DB_CONNECTION_ARGS) == {
        "sslmode": "verify-full", "sslpassword": "key-pw"}
    assert config.BUILDLOGS_REDIS.redis_kwargs()["password"] == "redis-pw"


def test_quays_own_keys_that_look_like_ours_are_not_typos(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", str(write(tmp_path, """\
        ACTION_LOG_ARCHIVE_LOCATION: default
        ACTION_LOG_ARCHIVE_PATH: /logs
        REGISTRY_TITLE: Quay
        USERFILES_LOCATON: default
        """))])
    assert result.exit_code == 0
    assert result.stderr == ("warning: unknown key USERFILES_LOCATON: did you mean "
                             "USERFILES_LOCATION?\n")
