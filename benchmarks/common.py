"""What every benchmark shares: targets, percentiles, machine facts, backends."""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:  # the shared helpers: `from support.xxx import ...`
    sys.path.insert(0, str(TESTS))

BACKENDS = ("sqlite_memory", "postgres_redis")
PG_ADMIN_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "slipway_bench"

# docs/architecture.md, "Performance targets" (per manager process, 2 cores)
TARGETS: dict[str, tuple[str, float, str]] = {
    # key: (comparison, value, text)
    "builds_per_s": (">=", 500, ">= 500 builds/s"),
    "p99_submit_to_executor_ms": ("<=", 50, "<= 50 ms"),
    "concurrent_builds": (">=", 10_000, ">= 10,000 tracked"),
    "lines_per_s": (">=", 50_000, ">= 50,000 lines/s"),
    # issue 30 (the first target was 1.2x): the small build against by hand
    "ratio_vs_hand": ("<=", 1.1, "<= 1.10x"),
    # issue 30: the three-step cold build against by hand, its warm rebuild against it
    "cold_vs_hand": ("<=", 1.1, "<= 1.10x"),
    "warm_vs_cold": ("<=", 0.1, "<= 0.10x"),
    # issue 30: the 100,000-line log usable in the web UI within 1 s of opening
    "browser_first_screen_s": ("<=", 1.0, "<= 1 s"),
    # issue 30: a build queued in Quay reaches an executor within 200 ms at p99
    "quay_paced_p99_ms": ("<=", 200, "<= 200 ms"),
    # docs/data-lifecycle.md: with retention the database stops growing
    "size_ratio_vs_first_1000": ("<=", 2.0, "<= 2x"),
    # docs/signing.md: what signing, provenance and SBOM add to a build
    "small_overhead_pct": ("<=", 10, "< 10%"),
}


def checked(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a command; its output. Its failure raises with the end of what it printed."""
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    if done.returncode:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed ({done.returncode}): {said}")
    return done.stdout


def meets(key: str, value: float | None) -> bool | None:
    target = TARGETS.get(key)
    if target is None or value is None:
        return None
    op, bound, _ = target
    return value >= bound if op == ">=" else value <= bound


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_at_start": rounded(load, 2),
    }


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
            capture_output=True, text=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Unavailable(Exception):
    """A backend (PostgreSQL, Redis) is missing: the figure is recorded as null with this."""


@dataclass
class Backend:
    """Where one benchmark's server keeps its state; `close()` removes it."""

    name: str
    db_uri: str | None  # None: SQLite in the data dir
    redis: dict[str, Any] | None
    _redis_server: Any = None

    def close(self) -> None:
        if self._redis_server is not None:
            self._redis_server.close()
            self._redis_server = None


def fresh_postgres() -> str:
    """Drop and create slipway_bench on the machine's PostgreSQL; its URI."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URI, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    except Exception as exc:
        raise Unavailable(f"PostgreSQL at 127.0.0.1:5432 is not usable: {exc}") from None
    return f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


def open_backend(name: str) -> Backend:
    if name == "sqlite_memory":
        return Backend(name, None, None)
    db_uri = fresh_postgres()
    try:
        from support.redis_server import RedisServer

        server = RedisServer()
        server.start()
    except Exception as exc:
        raise Unavailable(f"could not start a private redis-server: {exc}") from None
    return Backend(name, db_uri, {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": server.port},
                   server)
