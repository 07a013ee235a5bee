"""The package's shape (docs/architecture.md, "Package map"): no import cycle, the API
apart from the CLI, and Quay mode known only to the backends."""

from __future__ import annotations

import ast
from pathlib import Path

from support.imports import SRC, find_cycle, imports, module_level_imports, modules

# the modules that may know which backend runs: the backends themselves, and Quay mode's
# own package
KNOW_THE_BACKEND = ("backends/", "quay/")


def test_no_import_cycle() -> None:
    """No module imports, as it is imported, one that imports it back (imports in
    functions and under `if TYPE_CHECKING:` do not run then)."""
    known = modules()
    graph = {name: module_level_imports(path, known) - {name}
             for name, path in known.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "modules import each other: " + " -> ".join(cycle or [])


def test_the_api_imports_nothing_of_the_cli() -> None:
    known = modules()
    offenders = sorted(
        f"{path.relative_to(SRC).as_posix()} imports {imported}"
        for path in known.values() if path.relative_to(SRC).as_posix().startswith("api/")
        for imported in imports(path, known)
        if imported == "slipway.cli" or imported.startswith("slipway.cli.")
    )
    assert offenders == [], offenders


def test_only_the_backends_know_quay_mode() -> None:
    known = modules()
    offenders = sorted(
        f"{relative} imports {imported}"
        for path in known.values()
        if not (relative := path.relative_to(SRC).as_posix()).startswith(KNOW_THE_BACKEND)
        for imported in imports(path, known)
        if imported == "slipway.quay" or imported.startswith("slipway.quay.")
    )
    assert offenders == [], offenders


def wait_for_calls(path: Path) -> list[int]:
    """The lines of `path` that call asyncio.wait_for."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "wait_for" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "asyncio"]


def test_no_asyncio_wait_for() -> None:
    """Python 3.11's asyncio.wait_for returns the result, swallowing the cancel, when the
    task awaiting it is cancelled just as what it waits for finishes (CPython gh-86296,
    fixed in 3.12): a worker's heartbeat loop cancelled that way beat on and its worker
    never exited. `async with asyncio.timeout(...)` passes the cancel on."""
    offenders = sorted(f"{path.relative_to(SRC).as_posix()}:{line}"
                       for path in modules().values() for line in wait_for_calls(path))
    assert offenders == [], offenders


def test_the_wait_for_check_sees_a_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nasync def f(e):\n    await asyncio.wait_for(e.wait(), 1)\n"
                      "async def g(c):\n    await c.wait_for(lambda: True)\n")
    assert wait_for_calls(sample) == [3]


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_cycle_check_sees_only_what_runs_at_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from slipway.manager import jobs\n"
        "from slipway.domain.phases import Phase\n"
        "try:\n"
        "    import slipway.backoff\n"
        "except ImportError:\n"
        "    pass\n"
        "if TYPE_CHECKING:\n"
        "    from slipway.manager.context import ManagerContext\n"
        "def later() -> None:\n"
        "    from slipway.server import SlipwayServer\n"
    )
    assert module_level_imports(sample, modules()) == {
        "slipway.manager.jobs", "slipway.domain.phases", "slipway.backoff"}
