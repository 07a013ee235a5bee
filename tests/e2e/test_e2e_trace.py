"""A real build's trace (docs/traces.md): API -> manager -> local executor -> `slipway
worker` with podman -> a real registry with the layer cache, then GET .../trace. Every
stage's span is there, in one trace, each under the right parent, the worker's spans
joined through the protocol; a second build on a fresh worker shows its steps cached."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.registry import Registry
from support.server import RunningServer, running_server

pytestmark = pytest.mark.podman

DOCKERFILE = """\
FROM {base}
RUN echo "traced {run}" > /traced.txt
COPY hello.txt /hello.txt
"""

MANAGER_SPANS = {"build", "admission", "queue wait", "claim", "executor start",
                 "worker start", "registration", "completion"}
WORKER_SPANS = {"worker", "worker process start", "register", "context fetch",
                "context unpack", "base pull", "cache probe", "build steps", "cache push",
                "push"}


def fresh_store(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started from now on use an empty container store (a fresh machine)."""
    directory.mkdir(parents=True)
    conf = directory / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{directory}/graph"\n'
                    f'runroot = "{directory}/run"\n')
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))


def registry_base(registry: Registry, base_image: str) -> str:
    """The base image in the test registry: the build pulls it from there."""
    ref = f"{registry.host}/base/slipway-base:1"
    subprocess.run(["podman", "push", "--tls-verify=false", base_image, f"docker://{ref}"],
                   check=True, capture_output=True)
    return ref


async def traced_build(slipway: RunningServer, files: dict[str, str]
                       ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    file_id = await slipway.upload_context(files)
    build = await slipway.start_build("demo", "traced", file_id=file_id)
    final = await slipway.wait_final("demo", "traced", build["id"])
    logs = await slipway.logs("demo", "traced", build["id"])
    assert final["phase"] == "complete", [e["message"] for e in logs][-20:]
    response = await slipway.api.get(f"/api/v1/repository/demo/traced/build/{build['id']}/trace")
    assert response.status_code == 200, response.text
    return final, response.json(), logs


def check_tree(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One trace, one root (`build`), every other span's parent in it, every child within
    its parent's time; the spans by id."""
    spans = trace["spans"]
    by_id = {s["span_id"]: s for s in spans}
    assert len(by_id) == len(spans), "a span id used twice"
    assert {s["trace_id"] for s in spans} == {trace["trace_id"]}
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert [r["name"] for r in roots] == ["build"]
    for span in spans:
        if span["parent_span_id"] is None:
            continue
        parent = by_id.get(span["parent_span_id"])
        assert parent is not None, f"{span['name']}: its parent is not in the trace"
        assert parent["start"] <= span["start"] + 1e-3, (span["name"], parent["name"])
        assert span["end"] <= parent["end"] + 1e-3, (span["name"], parent["name"])
    return by_id


def parent_name(by_id: dict[str, dict[str, Any]], span: dict[str, Any]) -> str:
    return str(by_id[span["parent_span_id"]]["name"])


async def test_a_real_build_has_every_stage_in_one_trace(
    tmp_path: Path, registry: Registry, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = registry_base(registry, base_image)
    files = {"Dockerfile": DOCKERFILE.format(base=base, run=tmp_path.name),
             "hello.txt": "hello\n"}
    # the steps pushed to the registry cache during the build, each a span of its own
    # (the local executor's default pushes them after the build's end: no span)
    settings = {"SERVER_HOSTNAME": registry.host, "INSECURE_REGISTRIES": [registry.host],
                "BUILD_MANAGER": ["ephemeral", {"EXECUTORS": [
                    {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman",
                     "REGISTRY_CACHE_PUSH": "during"}]}]}

    fresh_store(tmp_path / "store-one", monkeypatch)
    async with running_server(tmp_path / "one", **settings) as slipway:
        _, trace, logs = await traced_build(slipway, files)
        admin_token = slipway.server.admin_token or ""
    assert trace["complete"] is True
    by_id = check_tree(trace)
    spans = trace["spans"]
    names = {s["name"] for s in spans}
    assert names >= MANAGER_SPANS | WORKER_SPANS, sorted(MANAGER_SPANS | WORKER_SPANS - names)

    services = {s["name"]: s["service"] for s in spans}
    assert {services[n] for n in MANAGER_SPANS} == {"slipway-manager"}
    assert {services[n] for n in WORKER_SPANS} == {"slipway-worker"}
    [worker] = [s for s in spans if s["name"] == "worker"]
    assert parent_name(by_id, worker) == "build"  # joined through the registration
    for span in spans:
        if span["service"] == "slipway-worker" and span is not worker:
            assert span["parent_span_id"] is not None
    for name in MANAGER_SPANS - {"build"}:
        assert all(parent_name(by_id, s) == "build" for s in spans if s["name"] == name)
    for name in ("worker process start", "register", "context fetch", "context unpack",
                 "base pull", "cache probe", "build steps", "push"):
        assert all(parent_name(by_id, s) == "worker" for s in spans if s["name"] == name)

    [wait] = [s for s in spans if s["name"] == "queue wait"]
    assert wait["attributes"]["slipway.queue.reason"] == "next"
    [pull] = [s for s in spans if s["name"] == "base pull"]
    assert pull["attributes"]["slipway.image"] == base
    assert {s["attributes"]["slipway.target"] for s in spans if s["name"] == "push"} == {
        f"{registry.host}/demo/traced:latest"}
    # a span for each build step the log shows, each under the build's steps
    commands = [e["message"] for e in logs if e.get("type") == "command"]
    steps = [s for s in spans if s["name"].startswith("step ")]
    assert [s["attributes"]["slipway.step.instruction"] for s in steps] == [
        c.split(": ", 1)[1] for c in commands]
    assert {parent_name(by_id, s) for s in steps} == {"build steps"}
    assert not any(s["attributes"]["slipway.step.cached"] for s in steps)  # a fresh store
    # the cache repository was empty: no step was looked up; the RUN and COPY steps
    # were pushed to it
    assert "Registry cache: empty, no step is looked up" in [e["message"] for e in logs]
    assert not [s for s in spans if s["name"] == "cache lookup"]
    assert {parent_name(by_id, s) for s in spans if s["name"] == "cache push"} == {
        "step 2/3", "step 3/3"}
    # no span carries a secret: no token (JWTs start "eyJ"), no admin token
    text = json.dumps(trace)
    assert "eyJ" not in text and admin_token not in text

    # the same build on a fresh worker: its steps come from the registry cache
    fresh_store(tmp_path / "store-two", monkeypatch)
    async with running_server(tmp_path / "two", **settings) as slipway:
        _, again, _ = await traced_build(slipway, files)
    by_id = check_tree(again)
    steps = {s["name"]: s for s in again["spans"] if s["name"].startswith("step ")}
    assert steps["step 2/3"]["attributes"]["slipway.step.cached"] is True
    # now each is looked up in the registry cache, and found, by the worker
    hits = [s for s in again["spans"] if s["name"] == "cache lookup"]
    assert sorted(parent_name(by_id, s) for s in hits) == ["step 2/3", "step 3/3"]
    assert all(s["attributes"]["slipway.cache.hit"] for s in hits)
    assert {s["service"] for s in hits} == {"slipway-worker"}
    assert not [s for s in again["spans"] if s["name"] == "cache push"]
