"""The layout's import rules, read from the source (ast), not by importing it.

``engine`` never imports ``handlers`` (packs reach the engine through entry points),
and neither package has an import cycle: counted are the imports a module runs,
at its top or inside its functions, not those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (its else branch counts)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of what the module imports at run time (``from a import b``: a.b and a)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: _imports(name, path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


#: A module path as ``importlib`` or a command table names it: "handlers.sandbox:cmd".
_DYNAMIC = re.compile(r"handlers(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?")


def _named_modules(path: Path) -> set[str]:
    """String constants that name a handlers module (a dynamic import by name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _DYNAMIC.fullmatch(node.value)
        and node.value != "handlers"  # the --handlers option's dest, the journal field
    }


def test_engine_never_imports_handlers() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, path in _modules("engine").items()
        for target in sorted(_imports(name, path) | _named_modules(path))
        if target == "handlers" or target.startswith("handlers.")
    ]
    assert offenders == []


def test_the_sandbox_never_imports_the_payments_pack() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, path in _modules("handlers/sandbox").items()
        for target in sorted(_imports(name, path))
        if target.startswith("handlers.payments")
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["handlers", "engine"])
def test_no_import_cycles(package: str) -> None:
    assert _cycle(_graph(package)) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _shared_helper(target: str) -> bool:
    """Tests share code only through tests/support (and pytest's conftest fixtures)."""
    parts = target.split(".")
    return parts[0] != "tests" or len(parts) < 2 or parts[1] == "support" or "conftest" in parts


def test_tests_share_helpers_only_through_tests_support() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, path in _modules("tests").items()
        if "node_modules" not in path.parts
        for target in sorted(_imports(name, path))
        if not _shared_helper(target) or target == "bench" or target.startswith("bench.")
    ]
    assert offenders == []
