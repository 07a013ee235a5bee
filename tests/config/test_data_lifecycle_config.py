"""LOG_ARCHIVE and RETENTION (docs/configuration.md, "Log archive and retention"): their
defaults, the S3 keys masked, bad values named with their fix, misspelt keys warned of."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from slipway.backends.data_lifecycle import housekeeping_policy, log_archive_from_config
from slipway.config import ConfigError, LoadedConfig, effective_config, load_config
from slipway.store.log_archive import DirectoryStorage, S3Storage


def load(tmp_path: Path, text: str) -> LoadedConfig:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.messages


def test_defaults_archive_to_a_directory_and_keep_90_days(tmp_path: Path) -> None:
    config = load(tmp_path, f"DATA_DIR: {tmp_path}/data\n").config
    archive = log_archive_from_config(config)
    assert isinstance(archive.storage, DirectoryStorage)
    assert archive.storage.directory == tmp_path / "data" / "logarchive"
    policy = housekeeping_policy(config)
    assert policy.archive_logs and policy.retention
    assert (policy.policy.default_days, policy.policy.keep_last) == (90, 10)
    assert policy.context_grace == 3600 and policy.batch_size == 500


def test_an_s3_archive_takes_quays_path_as_its_prefix_and_masks_its_keys(
    tmp_path: Path,
) -> None:
    loaded = load(tmp_path, """\
        LOG_ARCHIVE_PATH: buildlogs/
        LOG_ARCHIVE:
          BUCKET: slipway-logs
          ENDPOINT_URL: https://minio.example.com
          REGION: eu-west-1
          ACCESS_KEY: AKIAEXAMPLEKEYID
          SECRET_KEY: very-secret-value
        RETENTION:
          DEFAULT_DAYS: 30
          NAMESPACES: {team: 7, releases: null}
    """)
    archive = log_archive_from_config(loaded.config)
    assert isinstance(archive.storage, S3Storage)
    assert archive.key("b1") == "buildlogs/b1.jsonl.gz"
    assert "very-secret-value" not in archive.describe()
    shown = yaml.safe_dump(effective_config(loaded.config))
    assert "very-secret-value" not in shown and "AKIAEXAMPLEKEYID" not in shown
    assert effective_config(loaded.config)["LOG_ARCHIVE"]["SECRET_KEY"] == "*****"
    retention = loaded.config.RETENTION
    assert (retention.days_for("team"), retention.days_for("releases"),
            retention.days_for("other")) == (7, None, 30)


def test_bad_values_say_what_to_write(tmp_path: Path) -> None:
    messages = errors(tmp_path, """\
        LOG_ARCHIVE: {BUCKET: logs, DIRECTORY: /var/logs, ACCESS_KEY: only-the-id}
        RETENTION: {DEFAULT_DAYS: -1, KEEP_LAST: many}
    """)
    text = "\n".join(messages)
    assert "LOG_ARCHIVE.BUCKET" in text and "not both" in text
    assert "RETENTION.DEFAULT_DAYS" in text and "RETENTION.KEEP_LAST" in text
    assert "only-the-id" not in text


def test_a_secret_key_alone_is_refused_without_showing_it(tmp_path: Path) -> None:
    messages = errors(tmp_path, "LOG_ARCHIVE: {BUCKET: logs, SECRET_KEY: hush-hush}\n")
    assert any("ACCESS_KEY and SECRET_KEY go together" in m for m in messages), messages
    assert not any("hush-hush" in m for m in messages)


def test_a_misspelt_key_is_a_warning(tmp_path: Path) -> None:
    loaded = load(tmp_path, "RETENTION: {DEFAULT_DAY: 30}\nLOG_ARCHIVE: {BUCKIT: logs}\n")
    assert "unknown key RETENTION.DEFAULT_DAY: did you mean DEFAULT_DAYS?" in loaded.warnings
    assert "unknown key LOG_ARCHIVE.BUCKIT: did you mean BUCKET?" in loaded.warnings
