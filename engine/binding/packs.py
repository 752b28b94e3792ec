"""Handler packs: finding and importing the code that backs SOP lines.

A *pack* is a module (usually a package) that says which SOPs it serves without
importing anything heavy::

    sops = ("payment-processing", "refund-handling")          # the SOPs it serves
    modules = ("mypack.charges", "mypack.refunds")            # imported to register handlers

Packs come from the nearest pyproject.toml's ``[tool.sop] handlers`` (project-local
packs or plain modules; setting it chooses the project's packs) or, where it is not
set, from installed distributions (entry-point group ``sop_engine.handlers``, so
``sop`` finds them from any directory); then ``--handlers`` / ``modules=`` add more.
A module without ``sops`` is a plain handler module: it serves every SOP and
registers on import. A pack's ``modules`` are imported only for
the SOPs at hand (or always when named explicitly), so running an unrelated SOP never
pays for a pack's dependencies. Unscoped handlers of a pack belong to the pack's SOPs
(``serves``): coverage of another SOP does not list them as unused.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
import traceback
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

from engine.binding.registry import HandlerDef, Registry, default_registry
from engine.errors import BindingError, HandlerImportError

ENTRY_POINT_GROUP = "sop_engine.handlers"


@dataclass(frozen=True)
class Pack:
    """One declared pack: where it came from, what it serves, what it imports."""

    name: str  # the descriptor module
    origin: str  # "entry point NAME (DIST)", "pyproject.toml", "--handlers"
    sops: frozenset[str] | None  # None: a plain module, serves every SOP
    modules: tuple[str, ...]
    explicit: bool = False  # named by the caller: loaded whatever the SOP

    def wanted(self, sops: Collection[str] | None) -> bool:
        """Load this pack for these SOPs (None: for every SOP)."""
        return self.explicit or self.sops is None or sops is None or bool(self.sops & set(sops))


# -- where packs are declared ---------------------------------------------------------
def _find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml from ``start`` up to the repository or filesystem root."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def project_packs(project_dir: Path | None = None) -> tuple[list[str] | None, Path]:
    """``[tool.sop] handlers`` of the nearest pyproject.toml (None: not set), and the
    project directory."""
    start = (project_dir or Path.cwd()).resolve()
    pyproject = _find_pyproject(start)
    if pyproject is None:
        return None, start
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HandlerImportError(f"{pyproject}: {str(exc).splitlines()[0]}") from None
    modules = data.get("tool", {}).get("sop", {}).get("handlers")
    if modules is None:
        return None, pyproject.parent
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise HandlerImportError(f"{pyproject}: [tool.sop] handlers must be a list of module names")
    return list(modules), pyproject.parent


def installed_entry_points() -> list[EntryPoint]:
    """The ``sop_engine.handlers`` entry points of every installed distribution."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


# -- importing --------------------------------------------------------------------------
def _failure_location(exc: BaseException) -> str | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    engine_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frames = [f for f in frames if not os.path.abspath(f.filename).startswith(engine_dir)] or frames
    if not frames:
        return None
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def import_handler_module(name: str) -> ModuleType:
    """Import one handler module; any failure becomes a one-line HandlerImportError."""
    try:
        return importlib.import_module(name)
    except BindingError as exc:
        where = _failure_location(exc)
        place = f" ({where})" if where else ""
        raise BindingError(f"handler module {name!r}{place}: {exc}") from None
    except Exception as exc:
        where = _failure_location(exc)
        place = f" ({where})" if where else ""
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise HandlerImportError(
            f"cannot import handler module {name!r}{place}: {type(exc).__name__}: {detail}"
        ) from None


def _names(value: object, what: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise HandlerImportError(f"{where}: {what} must be a tuple of names")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise HandlerImportError(f"{where}: {what} must be a tuple of names")
    return names


def describe(name: str, origin: str, *, explicit: bool = False) -> Pack:
    """Import the module ``name`` (a pack's light descriptor, or a plain handler module)."""
    module = import_handler_module(name)
    if not hasattr(module, "sops"):
        return Pack(name, origin, None, (), explicit)
    where = f"handler pack {name!r} ({origin})"
    sops = frozenset(_names(module.sops, "sops", where))
    modules = _names(getattr(module, "modules", ()), "modules", where)
    outside = [m for m in modules if m != name and not m.startswith(name + ".")]
    if outside:
        raise HandlerImportError(f"{where}: module {outside[0]!r} is outside the pack")
    return Pack(name, origin, sops, modules, explicit)


def declared(modules: Iterable[str] = (), *, project_dir: Path | None = None) -> list[Pack]:
    """The packs declared here: the project's, else the installed ones; then ``modules``.

    A project that sets ``[tool.sop] handlers`` chooses its packs (an installed pack
    joins by being listed, by module name): handlers it writes for a built-in SOP never
    tie with an installed pack's. Anywhere else (no such setting) every installed pack
    serves its SOPs.
    """
    configured, root = project_packs(project_dir)
    root_str = str(root)
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    origins: dict[str, tuple[str, bool]] = {}
    if configured is None:
        for ep in installed_entry_points():
            dist = ep.dist.name if ep.dist is not None else "?"
            origins.setdefault(ep.module, (f"entry point {ep.name} ({dist})", False))
    for name in configured or ():
        origins.setdefault(name, ("pyproject.toml [tool.sop] handlers", False))
    for name in modules:
        origins[name] = ("--handlers", True)
    return [
        describe(name, origin, explicit=explicit) for name, (origin, explicit) in origins.items()
    ]


def _import(packs: Iterable[Pack], sops: Collection[str] | None) -> None:
    for pack in packs:
        if pack.wanted(sops):
            for name in pack.modules:
                import_handler_module(name)


def load_handlers(
    modules: Iterable[str] = (),
    *,
    project_dir: Path | None = None,
    sops: Collection[str] | None = None,
) -> Registry:
    """Import the packs serving ``sops`` (None: all) and ``modules``; validate; the registry."""
    _import(declared(modules, project_dir=project_dir), sops)
    default_registry.validate()
    return default_registry


class PackLoader:
    """The packs the Python API loads (``engine.run``/``engine.plan`` without a registry).

    The same packs as the command line: declared once per working directory (entry
    points, then ``[tool.sop] handlers``), imported once per SOP, for the life of the
    process (as the modules it imports are).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._declared: dict[str, list[Pack]] = {}
        self._loaded: set[tuple[str, str]] = set()

    def registry_for(self, sop: str) -> Registry:
        """The registry with every pack serving ``sop`` imported and validated."""
        where = os.getcwd()
        if (where, sop) in self._loaded:
            return self.registry
        before = self.registry.generation
        packs = self._declared.get(where)
        if packs is None:
            packs = self._declared[where] = declared(project_dir=Path(where))
        _import(packs, (sop,))
        if self.registry.generation != before:
            self.registry.validate()
        self._loaded.add((where, sop))
        return self.registry


#: The Python API's loader, over the default registry (same lifetime: the process).
api_packs = PackLoader(default_registry)


# -- which SOPs a handler serves -----------------------------------------------------------
def pack_sops(module_name: str) -> frozenset[str] | None:
    """The SOPs served by the pack that ``module_name`` belongs to (None: not in a pack).

    A pack's modules live in its package, which Python imported first: the nearest
    enclosing module with ``sops`` is the pack.
    """
    parts = module_name.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and hasattr(module, "sops"):
            try:
                return frozenset(_names(module.sops, "sops", module.__name__))
            except HandlerImportError:
                return None
    return None


def serves(handler: HandlerDef, sop: str) -> bool:
    """``handler`` can bind lines of ``sop``: its own scope, then its pack's."""
    if handler.sop is not None:
        return handler.sop == sop
    served = pack_sops(getattr(handler.func, "__module__", None) or "")
    return served is None or sop in served


__all__ = [
    "ENTRY_POINT_GROUP",
    "Pack",
    "PackLoader",
    "api_packs",
    "declared",
    "describe",
    "import_handler_module",
    "installed_entry_points",
    "load_handlers",
    "pack_sops",
    "project_packs",
    "serves",
]
