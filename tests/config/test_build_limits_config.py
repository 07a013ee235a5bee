"""BUILD_TIMEOUTS and QUEUE_TTL in config.yaml (issue 29): durations or seconds by
namespace, a bad one named by its YAML path with the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from slipway.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return info.value.messages


def test_limits_read_as_seconds(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, """
        BUILD_TIMEOUTS: {DEFAULT: 1h, NAMESPACES: {team: 1800, ops: 20m}}
        QUEUE_TTL: {NAMESPACES: {team: 1h30m}}
    """)).config
    assert config.BUILD_TIMEOUTS.DEFAULT == 3600
    assert config.BUILD_TIMEOUTS.NAMESPACES == {"team": 1800, "ops": 1200}
    assert config.QUEUE_TTL.DEFAULT is None and config.QUEUE_TTL.NAMESPACES == {"team": 5400}


def test_a_lone_duration_is_every_namespace_s(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "QUEUE_TTL: 2h\nBUILD_TIMEOUTS: 600\n")).config
    assert config.QUEUE_TTL.DEFAULT == 7200 and config.BUILD_TIMEOUTS.DEFAULT == 600


def test_no_limits_by_default(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "SERVER_HOSTNAME: quay.example.com\n")).config
    assert config.BUILD_TIMEOUTS.DEFAULT is None and config.BUILD_TIMEOUTS.NAMESPACES == {}
    assert config.QUEUE_TTL.DEFAULT is None and config.QUEUE_TTL.NAMESPACES == {}


def test_a_timeout_past_machine_max_time_names_its_path_and_the_fix(tmp_path: Path) -> None:
    assert _errors(tmp_path, """
        BUILD_MANAGER: [ephemeral, {EXECUTORS: [{EXECUTOR: local}], MACHINE_MAX_TIME: 3600}]
        BUILD_TIMEOUTS: {NAMESPACES: {team: 2h}}
    """) == [
        "BUILD_TIMEOUTS.NAMESPACES.team: 7200 s is longer than "
        "BUILD_MANAGER[1].MACHINE_MAX_TIME (3600 s), the longest a build runs here; lower "
        "it to at most 3600, or raise MACHINE_MAX_TIME"
    ]


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("BUILD_TIMEOUTS: {DEFAULT: soon}", "BUILD_TIMEOUTS.DEFAULT",
         "'soon' is not a duration; write 90s, 20m or 1h30m"),
        ("QUEUE_TTL: {NAMESPACES: {team: 0}}", "QUEUE_TTL.NAMESPACES.team", "no time at all"),
        ("QUEUE_TTL: {NAMESPACES: {'Bad Name': 60}}", "QUEUE_TTL.NAMESPACES",
         "'Bad Name' is not a namespace"),
        ("QUEUE_TTL: {NAMESPACE: {team: 60}}", "QUEUE_TTL",
         "'NAMESPACE' is not a key here; write DEFAULT: 1h and/or NAMESPACES: {team: 30m}"),
        ("BUILD_TIMEOUTS: [1h]", "BUILD_TIMEOUTS", "is not a mapping"),
    ],
)
def test_bad_values_name_the_yaml_path(tmp_path: Path, text: str, path: str, words: str) -> None:
    [message] = _errors(tmp_path, text + "\n")
    assert message.startswith(path + ":") and words in message, message
