"""Run every benchmark; write benchmarks/results/latest.json and latest.md; print the table.

python -m benchmarks.run            # the full run (docs/architecture.md targets); minutes
python -m benchmarks.run --smoke    # seconds-scale sizes; results to a temp dir
python -m benchmarks.run --only scheduling,logs --out DIR
python -m benchmarks.run --only restarts  # one section: the others in latest.json are kept
python -m benchmarks.run --only retention   # not in the default run: minutes a backend
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import BACKENDS, Unavailable, git_revision, machine, open_backend

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ("scheduling", "tracking", "logs", "e2e", "quay_mode", "restarts")
# sections that start their own PostgreSQL and Redis (they stop them on purpose): the
# machine's shared backend is not opened for them
OWN_SERVERS = frozenset({"restarts"})
# run only when named (--only): each takes minutes on its own
OPTIONAL = ("retention", "signing")


class Sizes:
    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke  # the restarts' smoke plan; e2e: the vfs store only, no UI log
        self.scheduling = [40] if smoke else [1_000, 10_000]
        self.paced = 10 if smoke else 200
        self.tracking = 200 if smoke else 10_000
        self.tracking_window = 3.0 if smoke else 20.0
        self.tracking_setup_limit = 60.0 if smoke else 480.0
        self.log_builds = 100
        self.log_lines_per_build = 20 if smoke else 2_000
        self.read_lines = 2_000 if smoke else 100_000
        self.e2e_runs = 1 if smoke else 3
        self.signing_runs = 1 if smoke else 5
        self.quay_drain = 40 if smoke else 1_000
        self.quay_paced = 10 if smoke else 50
        # builds, wave, lines per build, retention age (s), pass interval (s), repositories
        self.retention = (60, 20, 20, 3.0, 1.0, 10) if smoke else (2400, 300, 500, 60.0, 5.0, 100)


async def _scheduling(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import scheduling

    runs: dict[str, Any] = {}
    for n in sizes.scheduling:
        runs[str(n)] = await scheduling.run(backend, n, work, paced_builds=sizes.paced)
        if backend.db_uri is not None:
            common.fresh_postgres()
    # the headline figures are those of the largest N
    return {**runs[str(sizes.scheduling[-1])], "runs": runs}


async def _tracking(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import tracking

    return await tracking.run(backend, sizes.tracking, work, window=sizes.tracking_window,
                              setup_limit=sizes.tracking_setup_limit)


async def _logs(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import logs

    return await logs.run(backend, work, builds=sizes.log_builds,
                          lines_per_build=sizes.log_lines_per_build,
                          read_lines=sizes.read_lines)


async def _e2e(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import e2e

    return await e2e.run(backend, work, runs=sizes.e2e_runs, smoke=sizes.smoke)


async def _quay_mode(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import quay_mode

    return await quay_mode.run(backend, sizes.quay_drain, work, paced_builds=sizes.quay_paced)


async def _restarts(backend: common.Backend | None, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import restarts

    plan = restarts.SMOKE_PLAN if sizes.smoke else restarts.RestartPlan()
    return await restarts.run(work / "restarts", plan)


async def _retention(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import retention

    builds, wave, lines, age_s, interval_s, repositories = sizes.retention
    return await retention.run(backend, work, builds=builds, wave=wave, lines=lines,
                               age_s=age_s, interval_s=interval_s, repositories=repositories)


async def _signing(backend: common.Backend, sizes: Sizes, work: Path) -> dict[str, Any]:
    from benchmarks import signing

    return await signing.run(backend, work, runs=sizes.signing_runs)


BENCHES: dict[str, tuple[Callable[..., Awaitable[dict[str, Any]]], tuple[str, ...]]] = {
    "scheduling": (_scheduling, BACKENDS),
    "tracking": (_tracking, BACKENDS),
    "logs": (_logs, BACKENDS),
    # the end-to-end build is about the embedded default; the backend barely matters there
    "e2e": (_e2e, ("sqlite_memory",)),
    # Quay mode runs on Quay's PostgreSQL database only
    "quay_mode": (_quay_mode, ("postgres_redis",)),
    # production mode on a private PostgreSQL and Redis of its own (about a minute)
    "restarts": (_restarts, ("postgres_redis",)),
    "retention": (_retention, BACKENDS),
    # signing + provenance + SBOM on a small and a Debian build (minutes)
    "signing": (_signing, ("sqlite_memory",)),
}


async def run_all(
    only: list[str], backends: list[str], smoke: bool, work: Path
) -> dict[str, Any]:
    sizes = Sizes(smoke)
    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "smoke": smoke,
            "backends": backends,
            "git": git_revision(),
            "machine": machine(),
            "targets": {k: v[2] for k, v in common.TARGETS.items()},
            "note": "server and benchmark clients share the machine's cores; "
                    "driver_cpu_share is the clients' own CPU use",
        }
    }
    for name in only:
        func, applicable = BENCHES[name]
        results[name] = {}
        for backend_name in [b for b in applicable if b in backends]:
            print(f"[bench] {name} / {backend_name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            backend = None
            try:
                if name not in OWN_SERVERS:
                    backend = open_backend(backend_name)
                figures = await func(backend, sizes, work)
            except Unavailable as exc:
                figures = {"error": str(exc)}
            except Exception as exc:
                traceback.print_exc()
                figures = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                if backend is not None:
                    backend.close()
            figures["duration_s"] = round(time.monotonic() - t0, 1)
            results[name][backend_name] = figures
            print(f"[bench] {name} / {backend_name}: {json.dumps(figures)}", file=sys.stderr,
                  flush=True)
    results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results


def keep_other_sections(path: Path, results: dict[str, Any], ran: list[str]) -> dict[str, Any]:
    """A run of some sections (--only) updates those in an existing latest.json and keeps
    the others, each with the revision and time of the run that measured it
    (meta.earlier_sections)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return results
    kept = [name for name in earlier if name != "meta" and name not in ran]
    if not kept:
        return results
    old_meta = earlier.get("meta", {})
    provenance = dict(old_meta.get("earlier_sections", {}))
    merged = dict(results)
    for name in kept:
        merged[name] = earlier[name]
        provenance.setdefault(name, {"git": old_meta.get("git"),
                                     "finished": old_meta.get("finished")})
    for name in ran:
        provenance.pop(name, None)
    merged["meta"] = {**results["meta"], "earlier_sections": provenance}
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small sizes, a temp output dir")
    parser.add_argument("--backends", default=None,
                        help=f"comma-separated subset of {', '.join(BACKENDS)} (default: both; "
                             "with --smoke: sqlite_memory)")
    parser.add_argument("--only", default=",".join(ALL),
                        help=f"comma-separated subset of {', '.join(ALL + OPTIONAL)} "
                             f"(default: {', '.join(ALL)})")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for latest.json/latest.md (default: "
                             "benchmarks/results, or a temp dir with --smoke)")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(ALL + OPTIONAL)}")
    backends = [b.strip() for b in (args.backends or (
        "sqlite_memory" if args.smoke else ",".join(BACKENDS))).split(",") if b.strip()]
    if any(b not in BACKENDS for b in backends):
        parser.error(f"--backends: choose from {', '.join(BACKENDS)}")
    out: Path = args.out or (Path(tempfile.mkdtemp(prefix="slipway-bench-smoke-"))
                             if args.smoke else RESULTS)
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-work-"))
    try:
        results = asyncio.run(run_all(only, backends, args.smoke, work))
    except BaseException:
        print(f"[bench] server logs kept in {work}", file=sys.stderr)
        raise
    if any(isinstance(fig, dict) and fig.get("error")
           for name in only for fig in results.get(name, {}).values()):
        print(f"[bench] some figures failed; server logs kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(write_results(out, results, only))
    print(f"results: {out / 'latest.json'}, {out / 'latest.md'}")
    return 0


def write_results(out: Path, results: dict[str, Any], ran: list[str]) -> str:
    """latest.json (the sections `ran` updated, the others kept) and latest.md; the table."""
    from benchmarks.report import markdown

    out.mkdir(parents=True, exist_ok=True)
    results = keep_other_sections(out / "latest.json", results, ran)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "latest.md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
