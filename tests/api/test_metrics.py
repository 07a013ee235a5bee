"""The Prometheus metrics an operator watches: log lines taken from workers, and builds
that ended, cancelled ones included, each counted once wherever the cancel happened."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.build_tree import assert_nothing_left, long_run, new_marker, running_build
from support.registry import Registry
from support.server import BuildApi, running_server


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


async def metric(api: BuildApi, name: str, **labels: str) -> float:
    """The sample's value (counters of this process are shared by the tests it runs, so
    the tests compare before and after)."""
    text = (await api.api.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.mark.podman
async def test_every_log_line_a_worker_sends_is_counted(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host]) as slipway:
        before = await metric(slipway, "slipway_log_lines_total")
        file_id = await slipway.upload_context(
            {"Dockerfile": f"FROM {base_image}\nRUN seq 1 300\n"})
        build = await slipway.start_build("demo", "lines", file_id=file_id)
        final = await slipway.wait_final("demo", "lines", build["id"])
        assert final["phase"] == "complete"
        logs = await slipway.logs("demo", "lines", build["id"])
        counted = await metric(slipway, "slipway_log_lines_total") - before
    from_worker = [e for e in logs if e.get("type") != "phase" and "phase" in e["data"]]
    assert len(from_worker) > 300
    assert counted == len(from_worker)


@pytest.mark.podman
async def test_a_cancelled_running_build_is_counted_once(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    marker = new_marker()
    async with running_server(tmp_path, SERVER_HOSTNAME=registry.host,
                              INSECURE_REGISTRIES=[registry.host]) as slipway:
        before = await metric(slipway, "slipway_builds_finished_total", phase="cancelled")
        file_id = await slipway.upload_context({"Dockerfile": long_run(base_image, marker)})
        build = await slipway.start_build("demo", "long", file_id=file_id)
        tree = await running_build(marker, build["id"])
        path = f"/api/v1/repository/demo/long/build/{build['id']}"
        assert (await slipway.api.delete(path)).status_code == 201
        await assert_nothing_left(tree)  # the manager has ended the attempt too
        assert (await slipway.api.delete(path)).status_code == 400  # too late: no change
        after = await metric(slipway, "slipway_builds_finished_total", phase="cancelled")
    assert after - before == 1


async def test_a_cancel_in_a_process_without_a_manager_is_counted(tmp_path: Path) -> None:
    # the API alone: the build managers run elsewhere
    async with running_server(tmp_path, BUILD_MANAGER=["external"]) as slipway:
        assert slipway.server.manager is None
        before = await metric(slipway, "slipway_builds_finished_total", phase="cancelled")
        build = await slipway.start_build(
            "demo", "queued", archive_url="https://example.invalid/context.tar.gz")
        path = f"/api/v1/repository/demo/queued/build/{build['id']}"
        assert (await slipway.api.delete(path)).status_code == 201
        after = await metric(slipway, "slipway_builds_finished_total", phase="cancelled")
    assert after - before == 1
