"""Where the built-in SOPs and the published schemas live, installed or not.

In a source checkout they are the top-level ``sops/`` and ``schemas/``; in a wheel
they are package data under ``engine/_sops`` and ``engine/_schemas``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent  # the engine package


def _first_dir(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]


def builtin_sops_dir() -> Path:
    return _first_dir(_PACKAGE / "_sops", _PACKAGE.parent / "sops")


def schemas_dir() -> Path:
    return _first_dir(_PACKAGE / "_schemas", _PACKAGE.parent / "schemas")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A published schema by file name, e.g. ``"sop.schema.json"``."""
    data: dict[str, Any] = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
    return data
