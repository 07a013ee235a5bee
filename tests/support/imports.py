"""The modules of src/slipway and what each imports, read with `ast` (nothing imported),
for the structure tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import slipway

SRC = Path(slipway.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of slipway but the Alembic migrations, by dotted name."""
    return {module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def _package(path: Path) -> str:
    if not path.is_relative_to(SRC):  # a test's own sample module
        return ""
    if path.name == "__init__.py":
        return module_name(path)
    return module_name(path).rpartition(".")[0]


def _base(node: ast.ImportFrom, package: str) -> str:
    base = node.module or ""
    if node.level:
        anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{anchor}.{base}" if base else anchor
    return base


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module `path` imports, at the top or inside a function (`from a import b`
    counts as a and as a.b when that is a module)."""
    found: set[str] = set()
    package = _package(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if f"{base}.{alias.name}" in known)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_at_import(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: not those in functions,
    nor those under `if TYPE_CHECKING:` (for the type checker only)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _run_at_import(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _run_at_import(inner)
        for handler in getattr(node, "handlers", []):
            yield from _run_at_import(handler.body)


def module_level_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The slipway modules `path` imports when it is imported. `from a import b` is an
    import of module a.b when b is a module, else of a."""
    found: set[str] = set()
    package = _package(path)
    for node in _run_at_import(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (its modules, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            cycle = visit(imported, [*path, name])
            if cycle is not None:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle is not None:
            return cycle
    return None
