"""Find SOPs by name: ./sops (recursive), then each SOP_PATH directory (``~`` expanded;
``--sop-paths`` folders first), then the built-ins.

An SOP file is ``NAME.sop.md``; the first directory that holds a NAME wins, so a
project can override a built-in procedure. Parsed SOPs are cached by file identity
(path, mtime_ns, size): a long-lived process (the MCP server) sees edits at once
and never re-parses an unchanged file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UsageError
from engine.language.parser import parse
from engine.language.resources import builtin_sops_dir
from engine.language.suggest import did_you_mean
from engine.model import Sop

__all__ = ["SUFFIX", "CatalogEntry", "entries", "find", "load", "path_list", "search_dirs"]

SUFFIX = ".sop.md"
_CACHE_LIMIT = 256


@dataclass(frozen=True)
class CatalogEntry:
    """One SOP the catalog found, as `sop list` shows it."""

    name: str
    title: str
    version: str | None
    status: str | None
    path: Path


_cache: dict[tuple[str, str], tuple[int, int, Sop]] = {}
_lock = threading.Lock()


def path_list(spec: str) -> list[Path]:
    """``A:B`` (``os.pathsep``-separated, as SOP_PATH and ``--sop-paths``) -> folders, ``~``
    expanded, empty parts dropped."""
    return [Path(part.strip()).expanduser() for part in spec.split(os.pathsep) if part.strip()]


def search_dirs() -> list[Path]:
    """Where SOPs are looked for, in order (existing or not).

    ``sop --sop-paths A:B`` puts its folders in front of SOP_PATH (engine.cli.common),
    so the command line beats the environment and the project's ./sops beats both.
    """
    dirs = [Path("sops"), *path_list(os.environ.get("SOP_PATH", ""))]
    dirs.append(builtin_sops_dir())
    seen: set[str] = set()
    unique: list[Path] = []
    for d in dirs:
        key = os.path.abspath(d)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def _files(directory: Path) -> list[Path]:
    """Every NAME.sop.md under ``directory``, shallowest first, then by path."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.rglob(f"*{SUFFIX}") if p.is_file()]
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def _name_of(path: Path) -> str:
    return path.name[: -len(SUFFIX)]


def find(name: str) -> Path | None:
    """The file for SOP ``name``, or None; a name with a path separator is never a name."""
    if not name or "/" in name or os.sep in name or name in (".", ".."):
        return None
    for directory in search_dirs():
        direct = directory / f"{name}{SUFFIX}"
        if direct.is_file():
            return direct
        for path in _files(directory):
            if _name_of(path) == name:
                return path
    return None


def _describe_dirs() -> str:
    return ", ".join("./sops" if str(d) == "sops" else str(d) for d in search_dirs())


def _load_path(path: Path) -> Sop:
    # the Sop carries the path as given (diagnostics print it), so that is part of the key
    key = (os.path.abspath(path), str(path))
    try:
        stat = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read SOP file '{path}': {exc.strerror or exc}") from exc
    if not path.is_file():
        raise UsageError(f"'{path}' is not a file: give an SOP name or a NAME.sop.md path")
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stat.st_mtime_ns and hit[1] == stat.st_size:
        return hit[2]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read SOP file '{path}': {exc.strerror or exc}") from exc
    sop = parse(data, path=str(path))
    with _lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (stat.st_mtime_ns, stat.st_size, sop)
    return sop


def load(name_or_path: str) -> Sop:
    """An SOP by path (an existing file, or anything ending in .md) or by catalog name."""
    if not name_or_path or not name_or_path.strip():
        raise UsageError("no SOP given: pass a name (see 'sop list') or a NAME.sop.md path")
    as_path = Path(name_or_path)
    if name_or_path.endswith(".md") or as_path.exists():
        if not as_path.exists():
            raise UsageError(f"no such SOP file '{name_or_path}'")
        return _load_path(as_path)
    path = find(name_or_path)
    if path is None:
        names = (_name_of(p) for directory in search_dirs() for p in _files(directory))
        hint = did_you_mean(name_or_path, names)
        raise UsageError(f"unknown SOP '{name_or_path}'{hint} (searched: {_describe_dirs()})")
    return _load_path(path)


def entries() -> list[CatalogEntry]:
    """Every SOP the catalog can find (first of each name wins), sorted by name."""
    chosen: dict[str, Path] = {}
    for directory in search_dirs():
        for path in _files(directory):
            chosen.setdefault(_name_of(path), path)
    out: list[CatalogEntry] = []
    for name in sorted(chosen):
        try:
            sop = _load_path(chosen[name])
        except UsageError:  # unreadable (permissions, vanished): listed, not fatal
            out.append(CatalogEntry(name, "", None, "unreadable", chosen[name]))
            continue
        status = sop.metadata.get("Status") or sop.metadata.get("status")
        out.append(CatalogEntry(name, sop.title, sop.version, status, chosen[name]))
    return out
