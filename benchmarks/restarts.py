"""Restarts (issue 25): what a Redis restart and a PostgreSQL outage cost running builds.

Production mode: two managers (API + gRPC, `benchmarks/server_proc.py`) on a private
PostgreSQL and a private redis-server (tests/support/serving_cluster.py). Builds are
submitted through both APIs over the submit window; protocol-speaking workers run each
(register, heartbeat, building, a few seconds of work, complete), every call to a manager
picked at random and retried as a worker retries. While builds run, Redis is restarted
empty (SIGKILL, no persistence), then PostgreSQL is stopped with a fast shutdown (SIGINT,
what `pg_ctl stop -m fast` sends) for a few seconds and started again. A submit that is
refused (5xx) or not answered is tried again on the other API, as a client behind a
load balancer would, pausing as Retry-After says (at most 1 s) or 0.25 s.

python -m benchmarks.restarts [--smoke]  (or python -m benchmarks.run --only restarts)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import rounded


@dataclass(frozen=True)
class RestartPlan:
    """Times are seconds from the first submit."""

    builds: int = 40
    submit_window_s: float = 20.0
    build_seconds: float = 4.0
    # Redis early, PostgreSQL late: the builds the Redis restart cost an attempt are
    # mostly retried and done before the PostgreSQL outage, which ends before the last
    # submits (their first 201 after it is a figure)
    redis_restart_at_s: float = 5.0
    postgres_stop_at_s: float = 13.0
    postgres_down_s: float = 5.0
    settle_limit_s: float = 180.0  # a guard: every build final by then, or an error
    # both longer than the PostgreSQL outage and its restart, as their defaults are (60 s,
    # and minutes for the executors): an outage longer than HEARTBEAT_EXPIRY ends attempts
    # by design (tests/faults/ covers that), and a worker has SETUP_TIME to register
    heartbeat_expiry_s: int = 20
    setup_time_s: int = 60


SMOKE_PLAN = RestartPlan(builds=8, submit_window_s=6.0, build_seconds=2.0,
                         redis_restart_at_s=2.0, postgres_stop_at_s=3.5, postgres_down_s=2.0,
                         settle_limit_s=120.0)


@dataclass
class Marks:
    """time.time() of each fault."""

    redis_down: float = 0.0
    redis_back: float = 0.0
    postgres_down: float = 0.0
    postgres_back: float = 0.0


async def _at(t0: float, offset: float) -> None:
    await asyncio.sleep(max(0.0, t0 + offset - time.time()))


async def _faults(cluster: Any, plan: RestartPlan, t0: float, marks: Marks) -> None:
    await _at(t0, plan.redis_restart_at_s)
    print("[restarts] Redis restarted empty", file=sys.stderr, flush=True)
    marks.redis_down = time.time()
    await asyncio.to_thread(cluster.redis.kill)  # no persistence: every key is gone
    await asyncio.to_thread(cluster.redis.start)  # same port, empty
    marks.redis_back = time.time()
    await _at(t0, plan.postgres_stop_at_s)
    print(f"[restarts] PostgreSQL stopped for {plan.postgres_down_s:g} s", file=sys.stderr,
          flush=True)
    marks.postgres_down = time.time()
    await asyncio.to_thread(cluster.postgres.stop)  # fast shutdown: sessions cut
    await asyncio.sleep(plan.postgres_down_s)
    await asyncio.to_thread(cluster.postgres.start)  # back once it accepts connections
    marks.postgres_back = time.time()
    print("[restarts] PostgreSQL back", file=sys.stderr, flush=True)


async def _submit_all(cluster: Any, plan: RestartPlan, t0: float) -> list[Any]:
    every = plan.submit_window_s / max(1, plan.builds - 1)
    submits = []
    for i in range(plan.builds):
        await _at(t0, i * every)
        submits.append(asyncio.create_task(cluster.submitter.submit(i, f"restart{i:04d}")))
    return [a for a in await asyncio.gather(*submits) if a is not None]


def _overlaps(start: float, end: float, since: float, until: float) -> bool:
    return start <= until and end >= since


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def build_time_figures(runs: dict[str, Any], marks: Marks) -> dict[str, Any]:
    """Worker-side build time (first registration -> `complete` acknowledged, over all
    its attempts) of the builds running when Redis was restarted, against that of the
    builds that ran across neither fault. A build whose attempt the restart cost may be
    retried into the PostgreSQL outage: how many were is said beside."""
    at_restart: list[float] = []
    also_postgres = 0
    undisturbed: list[float] = []
    for run in runs.values():
        if run.first_registered is None or run.completed is None:
            continue
        span = (run.first_registered, run.completed)
        duration = run.completed - run.first_registered
        across_postgres = _overlaps(*span, marks.postgres_down, marks.postgres_back)
        if _overlaps(*span, marks.redis_down, marks.redis_back):
            at_restart.append(duration)
            also_postgres += across_postgres
        elif not across_postgres:
            undisturbed.append(duration)
    at_restart_p50, undisturbed_p50 = _median(at_restart), _median(undisturbed)
    added = (None if at_restart_p50 is None or undisturbed_p50 is None
             else at_restart_p50 - undisturbed_p50)
    return {
        "builds_running_at_redis_restart": len(at_restart),
        "of_them_also_across_postgres_outage": also_postgres,
        "build_s_p50_running_at_redis_restart": rounded(at_restart_p50, 2),
        "build_s_max_running_at_redis_restart": rounded(max(at_restart, default=None), 2),
        "build_s_p50_undisturbed": rounded(undisturbed_p50, 2),
        "redis_restart_added_build_s": rounded(added, 2),
    }


async def run(work: Path, plan: RestartPlan) -> dict[str, Any]:
    from support.serving_cluster import ServingCluster, attempts_lost

    from slipway.domain.phases import Phase

    cluster = ServingCluster(work, managers=2, build_seconds=plan.build_seconds,
                             heartbeat_expiry_s=plan.heartbeat_expiry_s,
                             setup_time_s=plan.setup_time_s)
    marks = Marks()
    try:
        await cluster.start()
        submitter = cluster.submitter
        assert submitter is not None
        print(f"[restarts] {plan.builds} builds over {plan.submit_window_s:g} s through "
              "both APIs", file=sys.stderr, flush=True)
        t0 = time.time()
        faults = asyncio.create_task(_faults(cluster, plan, t0, marks))
        accepted = await _submit_all(cluster, plan, t0)
        await faults
        build_ids = [a.build_id for a in accepted]
        print(f"[restarts] {len(accepted)} accepted; waiting for every build to end",
              file=sys.stderr, flush=True)
        # past the limit, the builds' phases as they are (reported, not hidden)
        records = await cluster.records(build_ids, within=plan.settle_limit_s, strict=False)
        completions = await cluster.completions_logged(build_ids)
        ready = [await m.ready() for m in cluster.managers]
        answers = dict(submitter.answers)
        after_postgres = sorted(a.answered - marks.postgres_back for a in accepted
                                if a.answered >= marks.postgres_back)
        during_outage = [a for a in accepted
                         if marks.postgres_down <= a.answered < marks.postgres_back]
        runs = cluster.workers.runs
    finally:
        await cluster.close()
    return {
        "plan": asdict(plan),
        "builds": plan.builds,
        "accepted": len(accepted),
        "submits_given_up": submitter.given_up,
        "complete": sum(r.phase is Phase.COMPLETE for r in records.values()),
        "not_complete": {p: n for p, n in _phases(records).items() if p != "complete"},
        "completed_more_than_once": sum(n > 1 for n in completions.values()),
        "attempts_lost": attempts_lost(records),
        "builds_retried": sum(len(r.attempts) > 1 for r in records.values()),
        "worker_jobs_ended": sum(r.ended_early for r in runs.values()),
        "status_5xx": submitter.count(lambda s: s >= 500),
        "status_503": answers.get("503", 0),
        "status_500": answers.get("500", 0),
        "no_answer": answers.get("no answer", 0),
        "answers": answers,
        "accepted_during_postgres_outage": len(during_outage),
        "postgres_back_to_first_accept_s": rounded(after_postgres[0], 2)
        if after_postgres else None,
        **build_time_figures(runs, marks),
        "managers_ready_after": all(ready),
    }


def _phases(records: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records.values():
        counts[record.phase.value] = counts.get(record.phase.value, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    import benchmarks.common  # noqa: F401 (puts tests/ on sys.path for support.*)

    parser = argparse.ArgumentParser(prog="python -m benchmarks.restarts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="8 builds over 6 s")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-restarts-"))
    figures = asyncio.run(run(work, SMOKE_PLAN if args.smoke else RestartPlan()))
    print(json.dumps(figures, indent=2))
    print(f"[restarts] server logs in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
