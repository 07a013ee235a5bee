"""The registry layer cache (docs/layer-cache.md), end to end: a Dockerfile whose RUN
steps dominate, built through slipway on a worker with an empty container store (cold:
the cache repository is empty too), rebuilt on another fresh worker (warm: the steps come
from the cache repository), and the same build and push by hand with `podman build` (no
cache, and with the registry cache's flags; a fresh store as well), side by side in one
run; and the cold and warm builds again with the other core busy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Backend, checked, rounded
from benchmarks.e2e import (
    BASE_IMAGE,
    _podman,
    cache_flags,
    context_tar,
    ensure_base_image,
    podman_config,
    through_slipway,
)
from benchmarks.harness import ServerProcess
from benchmarks.trace_spans import span_medians_ms

SLOW_DOCKERFILE = """\
FROM {base}
RUN echo "a slow step" && sleep 4 && seq 1 20000 > /numbers.txt
RUN echo "another" && sleep 2 && date > /stamp
"""


DRIVERS = ("vfs", "overlay")


def fresh_store(directory: Path, driver: str = "vfs") -> dict[str, str]:
    """The environment of a worker whose container store starts empty: `vfs` (no mounts:
    the worker image's store where /dev/fuse cannot be opened, each layer a full copy), or
    `overlay` through fuse-overlayfs (the worker image's store where it can:
    deploy/images/storage.conf)."""
    directory.mkdir(parents=True)
    conf = directory / "storage.conf"
    text = (f'[storage]\ndriver = "{driver}"\ngraphroot = "{directory}/graph"\n'
            f'runroot = "{directory}/run"\n')
    if driver == "overlay":
        text += '\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n'
    conf.write_text(text)
    return {"CONTAINERS_STORAGE_CONF": str(conf)}


def remove_store(directory: Path) -> None:
    """The store and anything still mounted in it (fuse-overlayfs)."""
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(
            f"{directory}/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)


def overlay_unusable() -> str:
    """Why the overlay store cannot be measured here; "" when it can."""
    if not shutil.which("fuse-overlayfs"):
        return "no fuse-overlayfs (scripts/install-system.sh installs it)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse cannot be opened"
    return ""


def by_hand(registry: str, dockerfile: str, run: int, store: Path, *,
            cache_to: str = "", driver: str = "vfs") -> float:
    """`podman build` and push on a fresh store, as the worker would run them: without a
    cache, or (`cache_to`) with the flags the worker adds for an empty cache repository
    (`--layers --cache-to REPO`)."""
    tag = f"{registry}/hand/{driver}-slow{run}{'-cached' if cache_to else ''}:latest"
    with tempfile.TemporaryDirectory(prefix="slipway-bench-hand-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(dockerfile)
        full_env = {**os.environ, **fresh_store(store, driver)}
        start = time.perf_counter()
        checked([*_podman(), "build", "--isolation", "chroot", *cache_flags(cache_to),
                 "--format", "docker",
                 "--tls-verify=false", "-f", str(ctx / "Dockerfile"), "-t", tag, str(ctx)],
                env=full_env)
        checked([*_podman(), "push", "--tls-verify=false", tag, f"docker://{tag}"],
                env=full_env)
        elapsed = time.perf_counter() - start
    remove_store(store)
    return elapsed


async def slipway_on_a_fresh_worker(
    config: dict[str, Any], work: Path, archive_url: str, repository: str, name: str,
    traces: list[dict[str, Any]] | None = None, driver: str = "vfs",
) -> float:
    store = work / f"store-{name}"
    server = ServerProcess(config, None, work / "e2e-cache.log", fresh_store(store, driver))
    await server.start()
    try:
        return await through_slipway(server, archive_url, 0, repository=repository,
                                     traces=traces)
    finally:
        await server.stop()
        remove_store(store)


async def run(backend: Backend, workdir: Path, *, runs: int = 3,
              drivers: Sequence[str] = DRIVERS) -> dict[str, Any]:
    """Each figure on the vfs store (the top level) and, when in `drivers`, on overlay
    (`overlay`)."""
    from support.fileserver import serve_files
    from support.registry import run_registry

    await asyncio.to_thread(ensure_base_image)
    work = workdir / "e2e-cache"
    work.mkdir(parents=True, exist_ok=True)
    with run_registry() as registry:
        base = f"{registry.host}/base/slipway-base:1"
        subprocess.run([*_podman(), "push", "--tls-verify=false", BASE_IMAGE,
                        f"docker://{base}"], check=True, capture_output=True)
        dockerfile = SLOW_DOCKERFILE.format(base=base)
        with serve_files(
            {"/context.tar.gz": (context_tar(dockerfile), "application/gzip")}
        ) as files:
            config = podman_config(work / "server", backend, registry.host)
            url = f"{files}/context.tar.gz"
            figures = {"storage_driver": "vfs", **await _on_driver(
                "vfs", config, work, url, registry.host, dockerfile, runs)}
            if "overlay" not in drivers:
                return figures
            why_not = overlay_unusable()
            figures["overlay"] = {"skipped": why_not} if why_not else {
                "storage_driver": "overlay (fuse-overlayfs)", **await _on_driver(
                    "overlay", config, work, url, registry.host, dockerfile, runs)}
    return figures


async def _on_driver(driver: str, config: dict[str, Any], work: Path, url: str,
                     registry: str, dockerfile: str, runs: int) -> dict[str, Any]:
    """Cold and warm with the other core busy, then cold, warm, by hand and by hand with
    the cache's flags in turn: every store (the workers' and by hand) `driver`."""
    cold: list[float] = []
    warm: list[float] = []
    hand: list[float] = []
    hand_cached: list[float] = []
    cold_traces: list[dict[str, Any]] = []
    warm_traces: list[dict[str, Any]] = []
    busy_cold: list[float] = []
    busy_warm: list[float] = []
    with one_core_busy():  # the other core: a CI job or another build beside
        for i in range(1, runs + 1):
            repository = f"bench/{driver}-busy{i}"
            busy_cold.append(await slipway_on_a_fresh_worker(
                config, work, url, repository, f"{driver}-busy-cold{i}", driver=driver))
            busy_warm.append(await slipway_on_a_fresh_worker(
                config, work, url, repository, f"{driver}-busy-warm{i}", driver=driver))
    for i in range(1, runs + 1):
        repository = f"bench/{driver}-slow{i}"  # a new repository: an empty cache
        cold.append(await slipway_on_a_fresh_worker(
            config, work, url, repository, f"{driver}-cold{i}", cold_traces, driver))
        warm.append(await slipway_on_a_fresh_worker(
            config, work, url, repository, f"{driver}-warm{i}", warm_traces, driver))
        hand.append(await asyncio.to_thread(
            by_hand, registry, dockerfile, i, work / f"store-{driver}-hand{i}",
            driver=driver))
        hand_cached.append(await asyncio.to_thread(
            by_hand, registry, dockerfile, i, work / f"store-{driver}-hand-cached{i}",
            cache_to=f"{registry}/hand/{driver}-slow{i}-cache", driver=driver))
    cold_s, warm_s, hand_s = (statistics.median(x) for x in (cold, warm, hand))
    hand_cached_s = statistics.median(hand_cached)
    return {
        "runs": runs,
        "cold_s": rounded(cold_s, 2),
        "warm_fresh_worker_s": rounded(warm_s, 2),
        "by_hand_no_cache_s": rounded(hand_s, 2),
        "cold_runs_s": [rounded(x, 2) for x in cold],
        "warm_runs_s": [rounded(x, 2) for x in warm],
        "by_hand_runs_s": [rounded(x, 2) for x in hand],
        "warm_vs_cold": rounded(warm_s / cold_s, 2),
        "cold_vs_hand": rounded(cold_s / hand_s, 2),
        # like for like: by hand with the registry cache's flags too
        "by_hand_same_cache_flags_s": rounded(hand_cached_s, 2),
        "by_hand_same_cache_flags_runs_s": [rounded(x, 2) for x in hand_cached],
        "cold_vs_hand_same_flags": rounded(cold_s / hand_cached_s, 2),
        # where each build's time goes (docs/traces.md): the median of each span's time
        "cold_span_medians_ms": span_medians_ms(cold_traces),
        "warm_span_medians_ms": span_medians_ms(warm_traces),
        "other_core_busy": {
            "cold_s": rounded(statistics.median(busy_cold), 2),
            "warm_fresh_worker_s": rounded(statistics.median(busy_warm), 2),
            "cold_runs_s": [rounded(x, 2) for x in busy_cold],
            "warm_runs_s": [rounded(x, 2) for x in busy_warm],
            "warm_vs_cold": rounded(
                statistics.median(busy_warm) / statistics.median(busy_cold), 2),
        },
    }


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """A process spinning on one core for the block's length."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


# --- before/after: the same benchmark code over two revisions of slipway ---------------

HEADLINES = ("ratio_vs_hand", "slipway_s", "by_hand_s")
CACHE_HEADLINES = ("warm_vs_cold", "cold_vs_hand", "cold_s", "warm_fresh_worker_s",
                   "by_hand_no_cache_s")


def _one_run(src: Path, label: str, pair: int, work: Path, runs: int) -> dict[str, Any]:
    """`python -m benchmarks.e2e --parts small,layer_cache` in a process of its own with
    `src` first on PYTHONPATH: its server and workers (which inherit the environment)
    run that revision's slipway; the benchmark's code is this tree's for both."""
    import json

    from benchmarks.common import ROOT, machine

    out = work / f"{label}-{pair}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    load = machine()["load_at_start"]
    started = time.time()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e", "--parts", "small,layer_cache",
         "--runs", str(runs), "--workdir", str(work / f"{label}-{pair}"), "--json", str(out)],
        cwd=ROOT, env=env, check=True)
    figures: dict[str, Any] = json.loads(out.read_text())
    return {"revision": label, "pair": pair, "load_at_start": load,
            "duration_s": rounded(time.time() - started, 1), **figures}


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    def median_of(values: list[Any]) -> float | None:
        numbers = [v for v in values if isinstance(v, int | float)]
        return rounded(statistics.median(numbers), 2) if numbers else None

    def span_medians(key: str, inner: str | None = None) -> dict[str, float | None]:
        tables = [(r[inner] if inner else r).get(key, {}) for r in results]
        names = {name for table in tables for name in table}
        # over the runs, each run's median; a span missing from a run counts 0 there
        found = {n: median_of([t.get(n, 0.0) for t in tables]) for n in names}
        return dict(sorted(found.items(), key=lambda kv: -(kv[1] or 0.0)))

    return {
        **{key: median_of([r.get(key) for r in results]) for key in HEADLINES},
        **{f"layer_cache.{key}": median_of([r["layer_cache"].get(key) for r in results])
           for key in CACHE_HEADLINES},
        "span_medians_ms": span_medians("span_medians_ms"),
        "layer_cache.cold_span_medians_ms": span_medians("cold_span_medians_ms",
                                                         "layer_cache"),
        "layer_cache.warm_span_medians_ms": span_medians("warm_span_medians_ms",
                                                         "layer_cache"),
    }


def compare(before_rev: str, pairs: int, runs: int, out: Path) -> dict[str, Any]:
    """`pairs` before/after pairs, alternating which goes first; `before_rev` checked
    out in a temporary worktree (removed afterwards), after = this tree."""
    import datetime as dt
    import json

    from benchmarks.common import ROOT, git_revision, machine

    work = Path(tempfile.mkdtemp(prefix="slipway-bench-compare-"))
    before_tree = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(before_tree), before_rev],
                   cwd=ROOT, check=True, capture_output=True)
    before_full = subprocess.run(["git", "rev-parse", before_rev], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results: list[dict[str, Any]] = []
    try:
        for pair in range(1, pairs + 1):
            order = [("before", before_tree / "src"), ("after", ROOT / "src")]
            if pair % 2 == 0:
                order.reverse()
            for label, src in order:
                print(f"[compare] pair {pair}: {label}", file=sys.stderr, flush=True)
                results.append(_one_run(src, label, pair, work, runs))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)],
                       cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "what": "issue 30, the registry layer cache's fixed costs: benchmarks.e2e's small "
                "build and layer-cache parts, before/after pairs run alternately",
        "started": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": {"before": before_full, "after": git_revision()},
        "pairs": pairs,
        "runs_per_part": runs,
        "medians": {
            "before": _medians([r for r in results if r["revision"] == "before"]),
            "after": _medians([r for r in results if r["revision"] == "after"]),
        },
        "runs": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.e2e_cache",
        description="before/after pairs of the small build and the layer cache benchmarks")
    parser.add_argument("--before", required=True, help="the revision measured as before")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    compare(args.before, args.pairs, args.runs, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
