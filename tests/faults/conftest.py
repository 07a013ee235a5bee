"""The fault-injection suite (issue 25): a Redis or PostgreSQL restart, a killed manager,
a partition or a paused worker costs no running build and no 500.

Each case starts what it breaks on its own (private PostgreSQL and redis-server, real
manager processes: tests/support/serving_cluster.py, manager_cluster.py), breaks it while
builds run, and checks what a user would notice: every accepted build ends once, the
API answers 503 with Retry-After (never 500) while a dependency is away, the managers are
ready again afterwards.

The cases:

- test_manager_killed.py: two managers, builds submitted through both APIs over a few
  seconds, one manager SIGKILLed mid-way: every accepted build completes exactly once,
  the survivor is ready, no API answered 5xx. Also the older three-manager case (its
  workers die with it): the killed manager's builds are retried on the others and the
  log lines it acknowledged are kept.
- test_image_store.py: run last (see `pytest_collection_modifyitems` below): after the
  whole suite, `podman images` and `podman manifest inspect localhost/slipway-base:multiarch`
  still work (the base images' builder keeps the host's image store usable), and
  rebuilding the base image in a private store keeps its manifest list whole.
- test_database_outage.py, test_disk_full.py: PostgreSQL away or its disk full: the API
  answers 503 + Retry-After, builds carry on once it is back.
- test_redis_restart.py: Redis restarted empty while builds run: the keys are restored.
- test_partition.py, test_paused_worker.py: a worker cut off from the manager, or
  SIGSTOPped: its build is retried or resumes, and ends once.

Every case here is marked `faults` (`pytest -m faults` runs the suite alone) and has a
time limit of FAULT_CASE_LIMIT_S unless it sets its own `timeout` mark: `make test` runs
this folder with the rest of tests/, so its time must stay bounded.

Figures: a case reports its one-line figures through the `fault_figures` fixture, which
takes a dict (the usual keys: accepted, complete, attempts_lost, status_5xx, status_503,
status_500; any others a case has), e.g.

    async def test_x(fault_figures: FaultFigures) -> None:  # support/fault_figures.py
        ...
        fault_figures({"accepted": 16, "complete": 16, "attempts_lost": 2, "status_500": 0})

At the end of the run they are printed as one table (a row per case, a column per key
any case used), so `make test`'s output shows them; `-s` also shows each as it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FAULT_CASE_LIMIT_S = 180  # a safety limit per case; each takes a few tens of seconds
HERE = Path(__file__).resolve().parent

FaultFigures = Callable[[dict[str, object]], None]
_FIGURES = pytest.StashKey[list[tuple[str, dict[str, object]]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's cases `faults` and bound their time; move the cases marked
    `run_last` (the image-store check) behind every other test of the run, wherever
    they were collected."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.faults)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(FAULT_CASE_LIMIT_S))
    last = [item for item in items if item.get_closest_marker("run_last") is not None]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.fixture
def fault_figures(request: pytest.FixtureRequest) -> FaultFigures:
    """Call it with the case's figures (a dict); they are printed at the end of the run."""
    rows = request.config.stash.setdefault(_FIGURES, [])

    def report(figures: dict[str, object]) -> None:
        rows.append((request.node.nodeid, dict(figures)))
        print(f"\n[faults] {request.node.name}: "
              + ", ".join(f"{key}={value}" for key, value in figures.items()))

    return report


def figures_table(rows: list[tuple[str, dict[str, object]]]) -> list[str]:
    """One row per case, a column per key any case used (in the order first seen)."""
    keys: list[str] = []
    for _, figures in rows:
        keys += [key for key in figures if key not in keys]
    header = ["case", *keys]
    body = [[nodeid.split("::")[-1], *(str(figures.get(key, "")) for key in keys)]
            for nodeid, figures in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in body)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    rows = config.stash.get(_FIGURES, [])
    if not rows:
        return
    terminalreporter.write_sep("=", "fault-injection figures (tests/faults)")
    for text in figures_table(rows):
        terminalreporter.write_line(text)
