"""The store's shape (docs/architecture.md): SQL only in store/ (and Quay mode's quay/), no
import cycle between store modules, and the manager, the API, the CLI and the server
asking for state through the store's interfaces; only the backends (backends/) pick an
implementation."""

from __future__ import annotations

from support.imports import SRC, find_cycle
from support.imports import imports as _imports
from support.imports import modules as _modules

# Quay mode's own SQL on Quay's tables (docs/quay-contract.md), which
# backends/quay.py puts behind store/interfaces.py
SQL_ALLOWED_OUTSIDE_STORE = ("quay/",)
# what the manager, the API, the CLI, server.py and the backends may import of store/
STORE_INTERFACE = {"slipway.store.interfaces", "slipway.store.records", "slipway.store.errors"}
# the one place that picks the implementation, from what DB_URI holds (Quay mode on
# Quay's database), and says in one line why it could not be opened
# (and the data lifecycle: the log archive LOG_ARCHIVE names, the housekeeping RETENTION
# configures: backends/data_lifecycle.py)
ASSEMBLERS = {"backends/": {"slipway.store.facade", "slipway.store.database_kind",
                            "slipway.store.open_errors", "slipway.store.housekeeping",
                            "slipway.store.log_archive", "slipway.store.retention"}}


def test_no_sqlalchemy_outside_store() -> None:
    modules = _modules()
    offenders = []
    for path in modules.values():
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(("store/", *SQL_ALLOWED_OUTSIDE_STORE)):
            continue
        if any(m == "sqlalchemy" or m.startswith("sqlalchemy.")
               for m in _imports(path, modules)):
            offenders.append(relative)
    assert offenders == [], f"SQL belongs in store/: {offenders}"


def test_store_modules_import_no_cycle() -> None:
    modules = _modules()
    store = {n: p for n, p in modules.items() if n.startswith("slipway.store.")}
    graph = {n: {m for m in _imports(p, modules) if m in store and m != n}
             for n, p in store.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "store modules import each other: " + " -> ".join(cycle or [])


def test_manager_api_and_cli_use_the_store_interfaces_only() -> None:
    modules = _modules()
    offenders = []
    for path in modules.values():
        relative = path.relative_to(SRC).as_posix()
        if not (relative.startswith(("manager/", "api/", "cli/", "backends/"))
                or relative == "server.py"):
            continue
        allowed = STORE_INTERFACE.union(*(assembled for prefix, assembled in ASSEMBLERS.items()
                                          if relative.startswith(prefix)))
        for imported in _imports(path, modules):
            if imported.startswith("slipway.store.") and imported not in allowed:
                offenders.append(f"{relative} imports {imported}")
    assert offenders == [], offenders


def test_the_checks_see_imports_inside_functions() -> None:
    """The walk finds a lazy import (config/models.py checks DB_URI with one)."""
    modules = _modules()
    assert "slipway.store.database_url" in _imports(SRC / "config" / "models.py", modules)


def test_backends_and_domain_import_nothing_above_them() -> None:
    """Dependencies point inward (docs/architecture.md): the store's backends (store/,
    quay/) know nothing of the manager or the API, and domain/ nothing but itself."""
    modules = _modules()
    offenders = []
    for path in modules.values():
        relative = path.relative_to(SRC).as_posix()
        for imported in _imports(path, modules):
            if not imported.startswith("slipway."):
                continue
            if relative.startswith(("store/", "quay/")) and \
                    imported.startswith(("slipway.manager", "slipway.api")):
                offenders.append(f"{relative} imports {imported}")
            if relative.startswith("domain/") and not imported.startswith("slipway.domain"):
                offenders.append(f"{relative} imports {imported}")
    assert offenders == [], offenders
