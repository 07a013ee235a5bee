"""The store's shape (docs/architecture.md): SQL only in store/, no import cycle between
store modules, and the manager, the API and the CLI asking for state through the store's
interfaces, never an implementation."""

from __future__ import annotations

import ast
from pathlib import Path

import slipway

SRC = Path(slipway.__file__).parent
# Quay mode's own SQL on Quay's tables (docs/quay-contract.md), until it is a backend
# behind store/interfaces.py
SQL_ALLOWED_OUTSIDE_STORE = ("quay/",)
# what the manager, the API, the CLI and server.py may import of store/
STORE_INTERFACE = {"slipway.store.interfaces", "slipway.store.records", "slipway.store.errors"}
# the one place that picks the implementation, from what DB_URI holds (Quay mode on
# Quay's database)
ASSEMBLERS = {"server.py": {"slipway.store.facade", "slipway.store.database_kind"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `path` imports, at the top or inside a function (`from a import b`
    counts as a.b when that is a module)."""
    found: set[str] = set()
    package = _module_name(path).rpartition(".")[0]
    if path.name == "__init__.py":
        package = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if f"{base}.{alias.name}" in modules)
    return found


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
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name):], name]
            raise AssertionError("store modules import each other: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_manager_api_and_cli_use_the_store_interfaces_only() -> None:
    modules = _modules()
    offenders = []
    for path in modules.values():
        relative = path.relative_to(SRC).as_posix()
        if not (relative.startswith(("manager/", "api/", "cli/")) or relative == "server.py"):
            continue
        allowed = STORE_INTERFACE | ASSEMBLERS.get(relative, set())
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
