"""Parameter overlays: ``schemas/NAME.params.schema.json`` says what prose cannot, merged
into the SOP's schema (``properties``, ``required``, ``allOf``, ``additionalProperties``)."""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path
from typing import Any

from engine.language.param_schema import CODE_BAD_DEFAULT, CODE_BAD_REGEX, Interpretation
from engine.language.resources import schemas_dir
from engine.language.sop_regex import PATTERN_RULES, pattern_error
from engine.model import Diagnostic, Severity, Sop

__all__ = ["merge_overlay", "overlay_path"]

_OVERLAY_TTL = 1.0  # seconds a lookup is reused: one lint pass asks several times per SOP
_OVERLAYS: dict[tuple[str, str | None, str], tuple[float, Path | None]] = {}


def overlay_path(sop: Sop) -> Path | None:
    """The first ``schemas/NAME.params.schema.json``: beside the SOP's project, cwd, built-ins."""
    key = (sop.name, sop.path, os.getcwd())
    now = time.monotonic()
    hit = _OVERLAYS.get(key)
    if hit is not None and now - hit[0] < _OVERLAY_TTL:
        return hit[1]
    found = _find_overlay(sop)
    if len(_OVERLAYS) > 4096:
        _OVERLAYS.clear()
    _OVERLAYS[key] = (now, found)
    return found


def _find_overlay(sop: Sop) -> Path | None:
    name = f"{sop.name}.params.schema.json"
    candidates: list[str] = []
    if sop.path:
        sop_dir = os.path.dirname(os.path.abspath(sop.path))
        candidates += [
            os.path.join(os.path.dirname(sop_dir), "schemas", name),
            os.path.join(sop_dir, "schemas", name),
        ]
    candidates += [os.path.join("schemas", name), os.path.join(_builtin_schemas(), name)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return Path(candidate).resolve()
    return None


@cache
def _builtin_schemas() -> str:
    return str(schemas_dir())


def merge_overlay(interp: Interpretation, sop: Sop, path: Path) -> None:
    try:
        overlay = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        interp.notes.append(
            Diagnostic(
                CODE_BAD_DEFAULT,
                Severity.ERROR,
                f"overlay {path}: cannot read it ({str(exc).splitlines()[0]}); fix the JSON",
                1,
                1,
                sop.path,
            )
        )
        return
    if not isinstance(overlay, dict):
        return
    schema = interp.schema
    for name, prop in (overlay.get("properties") or {}).items():
        if isinstance(prop, dict):
            schema["properties"][name] = {**schema["properties"].get(name, {}), **prop}
    for name in overlay.get("required") or []:
        if name not in schema["required"]:
            schema["required"].append(name)
    extra = [c for c in overlay.get("allOf") or [] if isinstance(c, dict)]
    if extra:
        schema.setdefault("allOf", []).extend(extra)
        interp.conditions.extend(_describe_condition(rule, path.name) for rule in extra)
    if "additionalProperties" in overlay:
        schema["additionalProperties"] = overlay["additionalProperties"]
    interp.overlay = path
    for pattern, problem in _bad_patterns(overlay):
        interp.notes.append(
            Diagnostic(
                CODE_BAD_REGEX,
                Severity.ERROR,
                f"overlay {path}: pattern {pattern!r} cannot be used ({problem}); {PATTERN_RULES}",
                1,
                1,
                sop.path,
            )
        )


def _bad_patterns(node: Any) -> list[tuple[str, str]]:
    """Every ``pattern`` / ``patternProperties`` key in a schema that RE2 refuses, and why."""
    found: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            patterns: list[Any] = [item.get("pattern")]
            if isinstance(item.get("patternProperties"), dict):
                patterns += list(item["patternProperties"])
            for pattern in patterns:
                problem = pattern_error(pattern) if isinstance(pattern, str) else None
                if problem is not None:
                    found.append((str(pattern), problem))
            stack.extend(item.values())
    return found


def _describe_condition(rule: dict[str, Any], source: str) -> str:
    """``{"if": {"properties": {"operation": {"const": "refund"}}}}`` -> "required when ..."."""
    clauses = []
    condition = rule.get("if")
    properties = condition.get("properties", {}) if isinstance(condition, dict) else {}
    for name, spec in properties.items() if isinstance(properties, dict) else ():
        if not isinstance(spec, dict):
            continue
        if "const" in spec:
            clauses.append(f"{name} is {spec['const']!r}")
        elif isinstance(spec.get("enum"), list):
            clauses.append(f"{name} is one of {', '.join(repr(v) for v in spec['enum'])}")
        elif isinstance(spec.get("not"), dict) and "const" in spec["not"]:
            clauses.append(f"{name} is not {spec['not']['const']!r}")
    when = f"required when {' and '.join(clauses)}" if clauses else "required by a rule"
    return f"{when} ({source})"
