"""End to end: a small real build through slipway (API -> manager -> local executor ->
`slipway worker` -> podman -> local registry) against the same `podman build` + `podman
push` run by hand, alternating, in the same run."""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Backend, checked, rounded
from benchmarks.harness import (
    ServerProcess,
    api_client,
    machine_busy_seconds,
    machine_quiet,
    server_config,
)
from benchmarks.trace_spans import end_seen_after_ms, fetch_trace, span_medians_ms, span_seconds
from slipway.worker.registry_cache import COMMITTED_LINE

BASE_IMAGE = "localhost/slipway-base:latest"
# each build's own `label`: podman's --layers would otherwise reuse the step images of
# the build before (the registry cache's steps) and race with its clean-up removing them
DOCKERFILE = """\
FROM {base}
RUN echo "hello from the slipway benchmark ({label})" > /hello.txt
RUN for i in $(seq 1 500); do echo "line $i of the build output"; done
RUN mkdir -p /app && seq 1 2000 > /app/numbers.txt && cp /hello.txt /app/
"""


def dockerfile(label: str) -> str:
    return DOCKERFILE.format(base=BASE_IMAGE, label=label)


PARTS = ("small", "back_to_back", "layer_cache", "multi_arch", "ui_log", "cli_start")


def context_tar(dockerfile: str) -> bytes:
    """A build context of one Dockerfile, as the benchmark's file server hands it out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def podman_config(data_dir: Path, backend: Backend, registry_host: str) -> dict[str, Any]:
    """A server whose local executor builds with podman and pushes to `registry_host`."""
    executor = {"EXECUTOR": "local", "NAME": "local", "CONTAINER_RUNTIME": "podman"}
    return server_config(
        data_dir, backend, executor=executor,
        top={"SERVER_HOSTNAME": registry_host, "INSECURE_REGISTRIES": [registry_host]},
    )


async def alternating(
    runs: int, kinds: dict[str, Callable[[int], Awaitable[float]]], *, settle: bool = True
) -> dict[str, list[float]]:
    """Run 0 of each kind unmeasured (page cache, podman's storage, Python imports), then
    runs 1..`runs` of each in turn, so that a change in the machine's load falls on all.
    With `settle`, each starts on a quiet machine: not beside what the last left running
    (a slipway worker's clean-up and exit, its server's next standby worker starting);
    the smoke run does not wait (beside other tests, the machine is never quiet)."""
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for i in range(runs + 1):
        for name, run in kinds.items():
            if settle:
                await machine_quiet()
            elapsed = await run(i)
            if i:
                times[name].append(elapsed)
    return times


async def side_by_side(
    runs: int,
    by_hand_run: Callable[[int], float],
    slipway_run: Callable[[int], Awaitable[float]],
    *, settle: bool = True,
) -> tuple[list[float], list[float]]:
    """By hand and through slipway, alternating (`alternating`)."""
    times = await alternating(runs, {
        "hand": lambda i: asyncio.to_thread(by_hand_run, i), "slipway": slipway_run},
        settle=settle)
    return times["hand"], times["slipway"]


def _podman() -> list[str]:
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    return ["podman", *(["--storage-driver", driver] if driver else [])]


def ensure_base_image() -> None:
    """Built as the tests build it (scripts/make-base-image.sh, the one builder: only
    when missing or changed)."""
    from support.images import ensure_base_image as build  # (tests/ is on sys.path)

    build()


def cache_flags(cache_to: str) -> list[str]:
    """The flags the worker runs a build with: without the registry cache, or with those
    it adds for a repository whose cache is empty (`--layers --cache-to REPO`)."""
    return ["--layers=true", "--cache-to", cache_to] if cache_to else ["--layers=false"]


def by_hand(registry: str, run: int, *, cache_to: str = "",
            cpu: list[float] | None = None) -> float:
    """The same build and push as the worker runs them (same flags), timed: without the
    registry cache, or (`cache_to`) with the flags the worker adds for a repository whose
    cache is empty (`--layers --cache-to REPO`). The machine's CPU time over the same
    window goes to `cpu`."""
    tag = f"{registry}/hand/app{run}{'-cached' if cache_to else ''}:latest"
    with tempfile.TemporaryDirectory(prefix="slipway-bench-hand-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(dockerfile(f"{'hand-cached' if cache_to else 'hand'}{run}"))
        busy = machine_busy_seconds()
        start = time.perf_counter()
        said = checked([*_podman(), "build", "--isolation", "chroot", *cache_flags(cache_to),
                        "--tls-verify=false", "--format", "docker", "--iidfile",
                        str(ctx.parent / f"{ctx.name}.iid"), "-f", str(ctx / "Dockerfile"),
                        "-t", tag, str(ctx)])
        checked([*_podman(), "push", "--tls-verify=false", "--digestfile",
                 str(ctx.parent / f"{ctx.name}.digest"), tag, f"docker://{tag}"])
        elapsed = time.perf_counter() - start
        if cpu is not None:
            cpu.append(machine_busy_seconds() - busy)
        step_images = [m[1] for line in said.splitlines()
                       if (m := COMMITTED_LINE.match(line))] if cache_to else []
        for leftover in (f"{ctx.name}.iid", f"{ctx.name}.digest"):
            (ctx.parent / leftover).unlink(missing_ok=True)
    subprocess.run([*_podman(), "rmi", tag], capture_output=True)
    if step_images:  # those --layers kept, as the build named them ("--> 0123abcd...")
        subprocess.run([*_podman(), "rmi", "--ignore", *step_images], capture_output=True)
    return elapsed


async def cleaned_up(image: str, limit: float = 60.0) -> None:
    """Wait for the worker's clean-up (after the build's end) to remove the build's image
    from the host's store: a build started meanwhile could meet images going while podman
    looks at its store ("layer not known"). Not part of any build's time."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        proc = await asyncio.create_subprocess_exec(
            *_podman(), "image", "exists", image, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        if await proc.wait() != 0:
            return
        await asyncio.sleep(0.1)


async def through_slipway(
    server: ServerProcess, archive_url: str, run: int, *, repository: str = "",
    options: dict[str, Any] | None = None, traces: list[dict[str, Any]] | None = None,
    image: str = "", cpu: list[float] | None = None,
) -> float:
    """The build's time from submit to its end seen, following its log stream as
    `slipway build` does; its trace is appended to `traces` (read after the time is
    taken), the machine's CPU time over it to `cpu`. `image`: the pushed name the worker's
    clean-up removes from the host's store, waited for after the time is taken."""
    path = f"/api/v1/repository/{repository or f'bench/app{run}'}/build/"
    async with api_client(server, 2) as client:
        busy = machine_busy_seconds()
        start = time.perf_counter()
        r = await client.post(path, json={"archive_url": archive_url, **(options or {})})
        r.raise_for_status()
        build_id = r.json()["id"]
        status = await followed_to_end(client, f"{path}{build_id}/logs/stream")
        elapsed = time.perf_counter() - start
        seen_at = time.time()
        if cpu is not None:
            cpu.append(machine_busy_seconds() - busy)
        if status["phase"] != "complete":
            logs = (await client.get(f"{path}{build_id}/logs")).json()
            tail = [e.get("message") for e in logs.get("logs", [])][-15:]
            raise RuntimeError(f"the slipway build ended {status['phase']}: {tail}")
        if traces is not None:
            trace = await fetch_trace(client, f"{path}{build_id}")
            traces.append({**trace, "end_seen_at": seen_at})
    if image:
        await cleaned_up(image)
    return elapsed


async def through_cli(server: ServerProcess, registry: str, workdir: Path, run: int, *,
                      cpu: list[float] | None = None) -> float:
    """The build as a user runs it, `slipway build DIR -t IMAGE`, timed from the command's
    start to its exit: its start, the context packed and uploaded, the build, the log
    followed to the end."""
    context = workdir / f"cli-context{run}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile(f"cli{run}"))
    image = f"{registry}/bench/cli{run}:latest"
    argv = [str(Path(sys.executable).with_name("slipway")), "build", str(context), "-t", image,
            "-q", "--server", server.api_url, "--token", server.token]
    busy = machine_busy_seconds()
    start = time.perf_counter()
    await asyncio.to_thread(checked, argv)
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.append(machine_busy_seconds() - busy)
    await cleaned_up(image)
    return elapsed


async def followed_to_end(client: httpx.AsyncClient, stream_url: str) -> dict[str, Any]:
    """The build's log stream read to its `end` event: the build as it ended."""
    async with client.stream("GET", stream_url, timeout=httpx.Timeout(120, read=600)) as r:
        r.raise_for_status()
        kind = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif kind == "end" and line.startswith("data:"):
                return dict(json.loads(line.partition(":")[2]))
    raise RuntimeError(f"{stream_url} closed before the build's end")


async def small_build(backend: Backend, workdir: Path, *, runs: int = 3,
                      settle: bool = True) -> dict[str, Any]:
    """The small build through slipway against the same by hand, alternating."""
    from support.fileserver import serve_files
    from support.registry import run_registry

    await asyncio.to_thread(ensure_base_image)
    contexts = {f"/{kind}{i}.tar.gz": (context_tar(dockerfile(f"{kind}{i}")), "application/gzip")
                for kind in ("slipway", "slipway-no-cache") for i in range(runs + 1)}
    with run_registry() as registry, serve_files(contexts) as files:
        config = podman_config(workdir / "e2e", backend, registry.host)
        server = ServerProcess(config, None, workdir / "e2e.log")
        await server.start()
        traces: list[dict[str, Any]] = []
        no_cache_traces: list[dict[str, Any]] = []
        cpu: dict[str, list[float]] = {
            "hand": [], "slipway": [], "hand_same_flags": [], "slipway_no_cache": [],
            "slipway_cli": []}
        host = registry.host
        try:
            times = await alternating(runs, {
                "hand": lambda i: asyncio.to_thread(by_hand, host, i,
                                                    cpu=cpu["hand"] if i else None),
                "slipway": lambda i: through_slipway(server, f"{files}/slipway{i}.tar.gz", i,
                                                     traces=traces if i else None,
                                                     cpu=cpu["slipway"] if i else None,
                                                     image=f"{host}/bench/app{i}:latest"),
                # like for like: what the registry cache costs, apart from slipway's own
                "hand_same_flags": lambda i: asyncio.to_thread(
                    by_hand, host, i, cache_to=f"{host}/hand/app{i}-cache",
                    cpu=cpu["hand_same_flags"] if i else None),
                "slipway_no_cache": lambda i: through_slipway(
                    server, f"{files}/slipway-no-cache{i}.tar.gz", i,
                    repository=f"bench/nocache{i}",
                    options={"no_cache": True},
                    traces=no_cache_traces if i else None,
                    cpu=cpu["slipway_no_cache"] if i else None,
                    image=f"{host}/bench/nocache{i}:latest"),
                # the user's clock: the same build through `slipway build`
                "slipway_cli": lambda i: through_cli(server, host, workdir / "e2e-cli", i,
                                                     cpu=cpu["slipway_cli"] if i else None),
            }, settle=settle)
        finally:
            await server.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        "runs": runs,
        "by_hand_s": rounded(median["hand"], 2),
        "slipway_s": rounded(median["slipway"], 2),
        "by_hand_runs_s": [rounded(x, 2) for x in times["hand"]],
        "slipway_runs_s": [rounded(x, 2) for x in times["slipway"]],
        "ratio_vs_hand": rounded(median["slipway"] / median["hand"], 2),
        # the machine's CPU time over each build (every process): what slipway costs,
        # whatever else the machine's clock shows
        "cpu_s": {name: rounded(value, 3) for name, value in cpu_median.items()},
        "cpu_ratio_vs_hand": rounded(cpu_median["slipway"] / cpu_median["hand"], 2),
        # where a build's time goes (docs/traces.md): the median of each span's time
        "span_medians_ms": span_medians_ms(traces),
        # from the end recorded (the build span's end) to the client's sight of it
        "end_seen_after_build_ms": end_seen_after_ms(traces),
        # the same through `slipway build DIR`: the command's start, the context's upload
        "slipway_cli_s": rounded(median["slipway_cli"], 2),
        "slipway_cli_runs_s": [rounded(x, 2) for x in times["slipway_cli"]],
        "cli_ratio_vs_hand": rounded(median["slipway_cli"] / median["hand"], 2),
        "like_for_like": {
            # the registry cache's flags by hand too (--layers --cache-to), as the worker
            # runs a repository's first build
            "by_hand_same_cache_flags_s": rounded(median["hand_same_flags"], 2),
            "by_hand_same_cache_flags_runs_s": [
                rounded(x, 2) for x in times["hand_same_flags"]],
            "ratio_vs_hand_same_flags": rounded(
                median["slipway"] / median["hand_same_flags"], 2),
            # slipway with the cache off for the build (no_cache), against by hand
            "slipway_no_cache_s": rounded(median["slipway_no_cache"], 2),
            "slipway_no_cache_runs_s": [rounded(x, 2) for x in times["slipway_no_cache"]],
            "no_cache_ratio_vs_hand": rounded(median["slipway_no_cache"] / median["hand"], 2),
            "no_cache_span_medians_ms": span_medians_ms(no_cache_traces),
            "no_cache_end_seen_after_build_ms": end_seen_after_ms(no_cache_traces),
        },
    }


async def back_to_back(backend: Backend, workdir: Path, *, builds: int = 8) -> dict[str, Any]:
    """The small build sent again as soon as the last one ended, each to a repository of
    its own (a pipeline's images), without the quiet wait: whether each finds a standby
    worker while the last one's worker still cleans up (docs/traces.md, `worker start`)."""
    from support.fileserver import serve_files
    from support.registry import run_registry

    await asyncio.to_thread(ensure_base_image)
    contexts = {f"/next{i}.tar.gz": (context_tar(dockerfile(f"next{i}")), "application/gzip")
                for i in range(builds + 1)}
    with run_registry() as registry, serve_files(contexts) as files:
        server = ServerProcess(podman_config(workdir / "e2e-next", backend, registry.host),
                               None, workdir / "e2e-next.log")
        await server.start()
        times: list[float] = []
        traces: list[dict[str, Any]] = []
        try:
            for i in range(builds + 1):  # the first one only readies the machine
                # the next is sent once the pushed image has left the host's store (a
                # build beside podman removing images may meet "layer not known")
                elapsed = await through_slipway(
                    server, f"{files}/next{i}.tar.gz", i, repository=f"bench/next{i}",
                    traces=traces if i else None, image=f"{registry.host}/bench/next{i}:latest")
                if i:
                    times.append(elapsed)
        finally:
            await server.stop()
    starts = [span_seconds(t).get("worker start", 0.0) * 1000 for t in traces]
    return {
        "builds": builds,
        "build_s": rounded(statistics.median(times), 2),
        "build_runs_s": [rounded(x, 2) for x in times],
        # a build that found no standby waits for a worker's start (about 0.2 s here)
        "worker_start_mean_ms": rounded(statistics.mean(starts), 1),
        "worker_start_max_ms": rounded(max(starts), 1),
        "worker_start_runs_ms": [rounded(x, 1) for x in starts],
    }


async def run(backend: Backend, workdir: Path, *, runs: int = 3,
              parts: Sequence[str] = PARTS, smoke: bool = False) -> dict[str, Any]:
    """The e2e section: the small build, alone and back to back, then the layer cache's
    and the multi-arch benchmarks, the web UI's 100,000-line log and the CLI's start
    (`parts` picks some). `smoke`: the
    layer cache on the vfs store only, no UI log."""
    figures: dict[str, Any] = {}
    if "small" in parts:
        figures.update(await small_build(backend, workdir, runs=runs, settle=not smoke))
    if "back_to_back" in parts:
        figures["back_to_back"] = await back_to_back(backend, workdir,
                                                     builds=2 if smoke else 8)
    if "layer_cache" in parts:
        from benchmarks import e2e_cache

        figures["layer_cache"] = await e2e_cache.run(
            backend, workdir, runs=runs, drivers=("vfs",) if smoke else e2e_cache.DRIVERS)
    if "multi_arch" in parts:
        from benchmarks import e2e_multiarch

        figures["multi_arch"] = await e2e_multiarch.run(backend, workdir, runs=runs,
                                                        settle=not smoke)
    if "ui_log" in parts and not smoke:
        from benchmarks import ui_log

        figures["ui_log"] = await ui_log.repeated(workdir / "ui-log", runs=runs)
    if "cli_start" in parts:
        from benchmarks import cli_start

        # what every `slipway` command waits before its own work
        figures["cli_start"] = await asyncio.to_thread(cli_start.run, 3 if smoke else 15)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Some parts of the e2e section alone, their figures as JSON to a file
    (benchmarks/e2e_cache.py's before/after runs each in a process of its own)."""
    import argparse
    import json

    from benchmarks.common import open_backend

    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    backend = open_backend("sqlite_memory")
    try:
        figures = asyncio.run(run(backend, args.workdir, runs=args.runs, parts=parts))
    finally:
        backend.close()
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
