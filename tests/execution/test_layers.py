"""The execution package stays in small layers with no import cycles (issue #10).

Imports are read from the source (every import statement, including those inside
functions, except type-only ``if TYPE_CHECKING:`` blocks), so a lazy import that
closes a cycle counts as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent
MAX_LINES = 600


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, known: set[str]) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_only(node):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    known = set(paths)
    return {name: _imports(ast.parse(p.read_text()), known) for name, p in paths.items()}


def _cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if there is one (depth-first)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for nxt in sorted(graph.get(name, ())):
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _ours(name: str) -> bool:
    return name.startswith("engine.execution.") or name == "engine.canonical"


def test_no_import_cycle_within_execution() -> None:
    graph = {name: {n for n in deps if _ours(n)} for name, deps in _graph().items() if _ours(name)}
    cycles = [cycle for name in sorted(graph) if (cycle := _cycle_through(name, graph)) is not None]
    assert cycles == []


def test_execution_modules_are_small() -> None:
    sizes = {
        path.name: len(path.read_text().splitlines()) for path in (ROOT / "execution").glob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
