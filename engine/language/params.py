"""Parameters section -> JSON Schema 2020-12, and input validation against it.

The SOP's prose is the source of truth: ``Values``, ``Format``, ``Default``,
``Constraints`` and ``Max length`` lines become schema keywords. A phrase this
module does not understand is never silently dropped: :func:`unenforced` reports
it as a lint warning. What prose cannot say goes in an optional overlay,
``schemas/NAME.params.schema.json``, merged into ``properties``/``required``/``allOf``.

The stages: prose -> schema (engine.language.param_schema), the overlay
(engine.language.param_overlay), values against the schema (engine.language.param_validation).
``jsonschema`` is imported only when a value is actually validated, so building a
schema (``sop schema``) stays cheap.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from engine.errors import ParameterError
from engine.language.param_overlay import merge_overlay, overlay_path
from engine.language.param_schema import (
    CODE_BAD_DEFAULT,
    CODE_BAD_REGEX,
    CODE_UNENFORCED,
    SCHEMA_DIALECT,
    Builder,
    Interpretation,
    anchored,
    regex_error,
)
from engine.language.param_validation import (
    MONEY_HINT,
    is_money,
    jsonschema_problems,
    named,
    short,
    warm_up,
)
from engine.model import Diagnostic, Sop

__all__ = [
    "CODE_BAD_DEFAULT",
    "CODE_BAD_REGEX",
    "CODE_UNENFORCED",
    "SCHEMA_DIALECT",
    "anchored",
    "coerce",
    "coerce_checked",
    "declared",
    "problems",
    "regex_error",
    "schema_for",
    "unenforced",
    "validate",
    "warm_up",
]


def _interpret(sop: Sop) -> Interpretation:
    """The SOP's interpretation, kept with the Sop per overlay file and mtime (an edited
    overlay is read again; the SOP itself is immutable)."""
    overlay = overlay_path(sop)
    stamp = f"{overlay}:{overlay.stat().st_mtime_ns}" if overlay else ""

    def build() -> Interpretation:
        interp = Builder(sop).build()
        if overlay is not None:
            merge_overlay(interp, sop, overlay)
        return interp

    return sop.derived(("params", stamp), build)


# --------------------------------------------------------------------------- public API


def declared(sop: Sop) -> dict[str, Any]:
    """The schema's ``properties`` (overlay merged); read-only, shared: do not modify."""
    properties: dict[str, Any] = _interpret(sop).schema["properties"]
    return properties


def schema_for(sop: Sop) -> dict[str, Any]:
    """The SOP's parameters as a JSON Schema 2020-12 document (overlay merged); a fresh copy."""
    return copy.deepcopy(_interpret(sop).schema)


def unenforced(sop: Sop) -> list[Diagnostic]:
    """Every parameter phrase the schema could not express, each with its line and a fix."""
    return list(_interpret(sop).notes)


def coerce(sop: Sop, raw: Mapping[str, str]) -> dict[str, Any]:
    """CLI strings -> the declared types (``"2500"`` -> 2500); undeclared keys stay strings.

    Raises ParameterError naming every value that does not convert.
    """
    out, failed = _coerce(sop, raw)
    if failed:
        raise ParameterError([f"{name}: {why}" for name, why in failed.items()])
    return out


def coerce_checked(sop: Sop, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with their strings coerced (:func:`coerce`), when the set is complete
    (``sop run``, ``sop plan``): a value that does not convert is reported together with
    every other problem (missing, pattern, range, unknown name), one per parameter, by name.
    """
    strings = {k: v for k, v in params.items() if isinstance(v, str)}
    out, failed = _coerce(sop, strings)
    merged = {**params, **out}
    if not failed:
        return merged
    rest = {k: v for k, v in merged.items() if k not in failed}
    found = [f"{name}: {why}" for name, why in failed.items()]
    found += [p for p in problems(sop, rest) if named(p) not in failed]
    raise ParameterError(sorted(found, key=named))


def _coerce(sop: Sop, raw: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values that convert, and why each other one does not (by name)."""
    properties = _interpret(sop).schema["properties"]
    out: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name, value in raw.items():
        prop = properties.get(name)
        json_type = prop.get("type") if isinstance(prop, dict) else None
        if not isinstance(value, str) or not isinstance(json_type, str):
            out[name] = value
            continue
        try:
            out[name] = _coerce_one(value, json_type, money=is_money(prop))
        except ValueError as exc:
            failed[name] = str(exc)
    return out, failed


#: An integer as a parameter string: ASCII digits with an optional sign, nothing else
#: (``int()`` also takes Arabic-Indic or full-width digits, "1_000" and Unicode spaces).
_INTEGER = re.compile(r"[-+]?[0-9]+", re.ASCII)
#: A number likewise: ASCII decimal, optional fraction and exponent (no "inf", "nan", "1_0").
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _coerce_one(value: str, json_type: str, *, money: bool = False) -> Any:
    text = value.strip(" \t\r\n")
    if json_type == "integer":
        if not _INTEGER.fullmatch(text):
            hint = f" ({MONEY_HINT})" if money else ""
            raise ValueError(
                f"{value!r} is not an integer: ASCII digits 0-9 with an optional sign{hint}"
            )
        return int(text)
    if json_type == "number":
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"{value!r} is not a number: ASCII digits, e.g. 12.5")
        return int(text) if _INTEGER.fullmatch(text) else float(text)
    if json_type == "boolean":
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean (use true or false)")
    if json_type in ("array", "object"):
        if json_type == "array" and not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a JSON {json_type}") from None
        if not isinstance(parsed, list if json_type == "array" else dict):
            raise ValueError(f"{value!r} is not a JSON {json_type}")
        return parsed
    return value


def problems(sop: Sop, params: Mapping[str, Any]) -> list[str]:
    """Every way ``params`` violates the SOP's schema, each 'name: what is wrong', by name
    (jsonschema decides; engine.language.param_validation words the messages)."""
    return _problems(sop, params)[0]


def _problems(sop: Sop, params: Mapping[str, Any]) -> tuple[list[str], Interpretation | None]:
    """:func:`problems`, and the interpretation it checked against (for the defaults)."""
    if not isinstance(params, Mapping):
        return [
            f"parameters: expected a mapping of names to values, got {type(params).__name__}"
        ], None
    bad_keys = [k for k in params if not isinstance(k, str)]
    if bad_keys:
        return [f"{short(k)}: parameter names must be strings" for k in bad_keys], None
    interp = _interpret(sop)
    return jsonschema_problems(interp, sop.name, params), interp


def validate(sop: Sop, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate against the SOP's schema; all problems at once as a ParameterError.

    Returns a new dict with defaults applied and generated defaults (UUIDs) filled in.
    """
    found, interp = _problems(sop, params)
    if found or interp is None:
        raise ParameterError(found)
    out = dict(params)
    defaulted: list[str] = []
    for name, prop in interp.schema["properties"].items():
        if name in out or not isinstance(prop, dict):
            continue
        if "default" in prop:
            out[name] = copy.deepcopy(prop["default"])
            defaulted.append(name)
        elif prop.get("x-generated") == "uuid":
            out[name] = str(uuid.uuid4())
    for name in defaulted:
        out[name] = _filled(name, out, set())
    return out


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


def _filled(name: str, values: dict[str, Any], seen: set[str]) -> Any:
    """A default's ``{param}`` placeholders filled from the other parameters (Agent SOPs:
    ``project_dir`` defaults to ``.agents/planning/{project_name}``); a placeholder naming
    no given parameter, or a cycle, is left as written for the performer."""
    value = values[name]
    if not isinstance(value, str) or "{" not in value:
        return value
    seen = seen | {name}

    def fill(m: re.Match[str]) -> str:
        other = m.group(1)
        if other in seen or other not in values or values[other] is None:
            return m.group(0)
        got = _filled(other, values, seen)
        return m.group(0) if isinstance(got, dict | list) else str(got)

    return _PLACEHOLDER.sub(fill, value)
