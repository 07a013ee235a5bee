"""`python -m benchmarks.run --smoke` runs every benchmark and reports every figure (how
fast is the benchmarks' business, not this test's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.images import podman_available

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "scheduling": ["builds_per_s", "p99_submit_to_executor_ms", "p99_submit_to_register_ms"],
    "tracking": ["concurrent_builds", "heartbeat_p99_ms", "bytes_per_build"],
    "logs": ["lines_per_s", "read_log_s"],
    "e2e": ["ratio_vs_hand"],
}


@pytest.mark.skipif(not podman_available(), reason="the end-to-end benchmark needs podman")
def test_smoke_run_reports_every_figure_without_touching_latest(tmp_path: Path) -> None:
    latest = ROOT / "benchmarks" / "results" / "latest.json"
    before = latest.read_bytes() if latest.exists() else None
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads((out / "latest.json").read_text())
    assert data["meta"]["machine"]["cores"] >= 1 and data["meta"]["git"]
    for bench, keys in FIGURES.items():
        figures = data[bench]["sqlite_memory"]
        assert "error" not in figures, figures
        for key in keys:
            assert isinstance(figures[key], int | float), (bench, key, figures)
    assert data["tracking"]["sqlite_memory"]["streams_failed"] == 0
    assert data["e2e"]["sqlite_memory"]["cli_start"]["build_to_first_request_s"] > 0
    assert data["e2e"]["sqlite_memory"]["slipway_cli_s"] > 0
    assert data["e2e"]["sqlite_memory"]["end_seen_after_build_ms"] >= 0
    assert data["logs"]["sqlite_memory"]["lines_accepted"] == data["logs"]["sqlite_memory"][
        "lines_sent"]
    table = (out / "latest.md").read_text()
    assert "builds scheduled per second" in table and ">= 500 builds/s" in table
    assert result.stdout.count("|") > 20  # the table is printed too
    after = latest.read_bytes() if latest.exists() else None
    assert after == before, "the smoke run must not overwrite benchmarks/results/latest.json"
