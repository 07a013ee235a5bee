"""`slipway gc`: one housekeeping pass with the server's config; `--dry-run` says what it
would remove (counts, bytes) and removes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from support.lifecycle import make_build
from typer.testing import CliRunner

from slipway.backends.data_lifecycle import log_archive_from_config
from slipway.config.models import AppConfig
from slipway.domain.phases import Phase
from slipway.store.facade import SqlStore


def write_config(tmp_path: Path) -> tuple[Path, AppConfig]:
    raw = {"DATA_DIR": str(tmp_path / "data"),
           "RETENTION": {"DEFAULT_DAYS": 30, "KEEP_LAST": 1},
           "LOG_ARCHIVE": {"ARCHIVE_AFTER": 0}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, AppConfig.model_validate(raw)


async def seed(config: AppConfig) -> dict[str, str]:
    store = await SqlStore(config.DB_URI, log_archive_from_config(config)).open()
    try:
        return {
            "old": await make_build(store, age_days=90, lines=40),
            "older": await make_build(store, age_days=60, lines=40),
            "running": await make_build(store, phase=Phase.BUILDING, age_days=120),
            "newest": await make_build(store, age_days=1, lines=40),
        }
    finally:
        await store.close()


async def remaining(config: AppConfig, ids: dict[str, str]) -> set[str]:
    store = await SqlStore(config.DB_URI, log_archive_from_config(config)).open()
    try:
        return {name for name, i in ids.items() if await store.builds.get(i) is not None}
    finally:
        await store.close()


def gc(*args: str) -> str:
    from slipway.cli.main import app

    result = CliRunner().invoke(app, ["gc", *args], prog_name="slipway")
    assert result.exit_code == 0, result.output
    return result.output


def test_gc_dry_run_says_what_it_would_remove_and_removes_nothing(tmp_path: Path) -> None:
    path, config = write_config(tmp_path)
    ids = asyncio.run(seed(config))

    out = gc("--dry-run", "-c", str(path))

    assert "would archive 1 build logs (40 lines)" in out  # the newest; the others go
    assert "would delete 2 builds (80 log lines in the database" in out
    assert "dry run: nothing was changed" in out
    assert asyncio.run(remaining(config, ids)) == set(ids)
    assert not (tmp_path / "data" / "logarchive").exists()

    report = json.loads(gc("--dry-run", "--json", "-c", str(path)))
    assert (report["builds_deleted"], report["dry_run"]) == (2, True)

    out = gc("-c", str(path))

    assert "deleted 2 builds (80 log lines in the database" in out
    assert "archived 1 build logs (40 lines" in out
    assert asyncio.run(remaining(config, ids)) == {"running", "newest"}
    assert (tmp_path / "data" / "logarchive" / f"{ids['newest']}.jsonl.gz").is_file()
