"""Parameters section -> JSON Schema 2020-12, and input validation against it.

The SOP's prose is the source of truth: ``Values``, ``Format``, ``Default``,
``Constraints`` and ``Max length`` lines become schema keywords. A phrase this
module does not understand is never silently dropped: :func:`unenforced` reports
it as a lint warning. What prose cannot say goes in an optional overlay,
``schemas/NAME.params.schema.json``, merged into ``properties``/``required``/``allOf``.

``jsonschema`` is imported only when a value is actually validated, so building a
schema (``sop schema``) stays cheap.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ParameterError
from engine.language.resources import schemas_dir
from engine.language.sop_regex import PATTERN_RULES, PatternError, pattern_error, sop_pattern
from engine.language.words import singular
from engine.model import Diagnostic, Parameter, Severity, Sop

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Diagnostic codes this module emits (documented with the rest in engine.language.lint).
CODE_UNENFORCED = "SOP121"
CODE_BAD_REGEX = "SOP120"
CODE_BAD_DEFAULT = "SOP124"

_TYPES: dict[str, str] = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "mapping": "object",
}

#: Format words (no backticks) that jsonschema's format checker enforces without extras.
_FORMATS: dict[str, str] = {
    "uuid": "uuid",
    "email": "email",
    "email address": "email",
    "date": "date",
    "iso 8601 date": "date",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
}

_BOUND_KEYS = {
    *("max length", "maximum length", "min length", "minimum length"),
    *("min", "minimum", "max", "maximum"),
}
_IGNORED_KEYS = {"description", "note", "notes", "example", "examples"}
_NUM = r"[-+]?\d[\d,_]*(?:\.\d+)?"


@dataclass
class _Interpretation:
    """Everything derived from one SOP's Parameters: schema, why each keyword exists, notes."""

    schema: dict[str, Any]
    why: dict[tuple[str, str], str] = field(default_factory=dict)  # (param, keyword) -> phrase
    conditions: list[str] = field(default_factory=list)  # allOf[i] -> phrase
    notes: list[Diagnostic] = field(default_factory=list)
    overlay: Path | None = None
    _validator: Validator | None = None

    def validator(self) -> Validator:
        """The jsonschema validator of this schema, built on first use and kept with it."""
        if self._validator is None:
            cls = _validator_class()
            self._validator = cls(self.schema, format_checker=cls.FORMAT_CHECKER)
        return self._validator


# --------------------------------------------------------------------------- helpers


def _ticks(value: str) -> list[str]:
    """Backticked tokens in ``value`` (``"`a` | `b`"`` -> ["a", "b"])."""
    return re.findall(r"`([^`]*)`", value)


def _number(text: str) -> int | float:
    cleaned = text.replace(",", "").replace("_", "")
    return float(cleaned) if "." in cleaned else int(cleaned)


def _typed(value: str, json_type: str | None) -> Any:
    """A literal from the prose in the parameter's type; ValueError if it does not fit."""
    if json_type == "integer":
        if not re.fullmatch(r"[-+]?\d+", value.strip()):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if json_type == "number":
        return _number(value.strip())
    if json_type == "boolean":
        lowered = value.strip().lower()
        if lowered not in {"true", "false"}:
            raise ValueError(f"{value!r} is not true or false")
        return lowered == "true"
    if json_type in ("array", "object"):
        parsed = json.loads(value)
        if not isinstance(parsed, list if json_type == "array" else dict):
            raise ValueError(f"{value!r} is not an {json_type}")
        return parsed
    return value


def _infer_type(default: str | None) -> str:
    """An untyped parameter is text, unless its default is plainly a boolean or an integer."""
    text = (default or "").strip().lower()
    if text in ("true", "false"):
        return "boolean"
    if re.fullmatch(r"[-+]?\d+", text):
        return "integer"
    return "string"


def anchored(regex: str) -> str:
    """``cus_[a-z]+`` -> ``^cus_[a-z]+$`` (alternations grouped so the anchors bind all)."""
    body = regex
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    if "|" in body:
        body = f"(?:{body})"
    return f"^{body}$"


def regex_error(regex: str) -> str | None:
    """Why ``regex`` cannot be a parameter Format (RE2's reason), or None."""
    return pattern_error(regex)


# --------------------------------------------------------------------------- interpretation


class _Builder:
    def __init__(self, sop: Sop) -> None:
        self.sop = sop
        self.interp = _Interpretation(schema={})
        self.enums: dict[str, list[Any]] = {}

    def note(self, line: int, message: str, code: str = CODE_UNENFORCED) -> None:
        severity = (
            Severity.ERROR if code in (CODE_BAD_REGEX, CODE_BAD_DEFAULT) else Severity.WARNING
        )
        self.interp.notes.append(Diagnostic(code, severity, message, line, 1, self.sop.path))

    def build(self) -> _Interpretation:
        properties: dict[str, Any] = {}
        required: list[str] = []
        pending_conditions: list[tuple[Parameter, str, int]] = []
        for param in self.sop.parameters:
            properties[param.name] = self.property(param, pending_conditions)
            if param.required and param.name not in required:
                required.append(param.name)
        all_of = [self.condition(*item) for item in pending_conditions]
        schema: dict[str, Any] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:sop:{self.sop.name}:params",
            "title": f"{self.sop.title or self.sop.name} parameters",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        if self.sop.version:
            schema["x-sop-version"] = self.sop.version
        conditions = [c for c in all_of if c is not None]
        if conditions:
            schema["allOf"] = [c[0] for c in conditions]
            self.interp.conditions = [c[1] for c in conditions]
        self.interp.schema = schema
        return self.interp

    def property(
        self, param: Parameter, pending: list[tuple[Parameter, str, int]]
    ) -> dict[str, Any]:
        prop: dict[str, Any] = {}
        json_type: str | None
        if param.type is None:
            json_type = _infer_type(param.default)  # Agent SOP: "(optional, default: true)"
        else:
            json_type = _TYPES.get(param.type.strip().lower())
            if json_type is None:
                self.note(
                    param.line,
                    f"parameter '{param.name}': type '{param.type}' is not enforced; use one of "
                    "string, integer, number, boolean, array, object",
                )
        if json_type:
            prop["type"] = json_type
        descriptions = [param.description.strip()] if param.description.strip() else []
        if param.default is not None:
            self.inline_default(param, json_type, prop, param.default)
        for attr in param.attributes:
            key = attr.key.strip().lower()
            value = attr.value.strip()
            where = f"parameter '{param.name}': '{attr.key}: {attr.value}'"
            if key in ("values", "allowed values", "enum", "one of"):
                self.enum(param, json_type, prop, value, attr.line, where)
            elif key in ("format", "pattern"):
                self.format(param, prop, value, attr.line, where)
            elif key == "default":
                self.default(param, json_type, prop, value, attr.line, where, pending)
            elif key in ("constraints", "constraint", "range", "limits"):
                self.constraints(param, json_type, prop, value, attr.line, where)
            elif key in _BOUND_KEYS:
                self.constraints(param, json_type, prop, f"{attr.key} {value}", attr.line, where)
            elif key == "description":
                if value:
                    descriptions.append(value)
            elif key in ("example", "examples"):
                examples = _ticks(value) or [v.strip() for v in value.split(",") if v.strip()]
                typed = []
                for item in examples:
                    try:
                        typed.append(_typed(item, json_type))
                    except (ValueError, json.JSONDecodeError):
                        typed.append(item)
                prop["examples"] = typed
            elif key in _IGNORED_KEYS:
                pass
            else:
                self.note(
                    attr.line,
                    f"{where} is not enforced: the engine does not understand '{attr.key}'; "
                    "use Values, Format, Default, Constraints or Max length, or add it to "
                    f"schemas/{self.sop.name}.params.schema.json",
                )
        if descriptions:
            prop["description"] = ". ".join(d.rstrip(".") for d in descriptions)
        return prop

    def enum(
        self,
        param: Parameter,
        json_type: str | None,
        prop: dict[str, Any],
        value: str,
        line: int,
        where: str,
    ) -> None:
        raw = _ticks(value) or [v.strip() for v in re.split(r"[|,]", value) if v.strip()]
        values: list[Any] = []
        for item in raw:
            try:
                values.append(_typed(item, json_type))
            except (ValueError, json.JSONDecodeError):
                self.note(
                    line, f"{where}: value {item!r} is not a {json_type}; fix the value or the type"
                )
        if values:
            prop["enum"] = values
            self.enums[param.name] = values
            self.interp.why[(param.name, "enum")] = f"Values: {value}"

    def format(
        self, param: Parameter, prop: dict[str, Any], value: str, line: int, where: str
    ) -> None:
        ticks = _ticks(value)
        if ticks:
            regex = ticks[0]
            problem = regex_error(regex)
            if problem is not None:
                self.note(
                    line,
                    f"{where}: the pattern cannot be used ({problem}); {PATTERN_RULES}. "
                    "Fix the pattern (it is anchored at both ends)",
                    CODE_BAD_REGEX,
                )
                return
            prop["pattern"] = anchored(regex)
            self.interp.why[(param.name, "pattern")] = f"Format: {value}"
            return
        fmt = _FORMATS.get(value.lower().rstrip("."))
        if fmt:
            prop["format"] = fmt
            return
        self.note(
            line,
            f"{where} is not enforced: write the format as a backticked regex "
            "(e.g. Format: `cus_[a-zA-Z0-9]+`) or one of uuid, email, date, ipv4, ipv6",
        )

    def default(
        self,
        param: Parameter,
        json_type: str | None,
        prop: dict[str, Any],
        value: str,
        line: int,
        where: str,
        pending: list[tuple[Parameter, str, int]] | None = None,
    ) -> None:
        ticks = _ticks(value)
        lowered = value.strip().strip('"').lower().rstrip(".")
        if ticks:
            literal = ticks[0]
        elif lowered in ("none", "null", "n/a", "-", "no default", ""):
            return
        elif re.fullmatch(
            r"(auto[- ]?generated|generated|random)( uuid( ?v?4)?)?", lowered
        ) or lowered in (
            "uuid",
            "auto-generated uuid",
        ):
            prop["x-generated"] = "uuid"
            self.interp.why[(param.name, "x-generated")] = value
            return
        elif lowered.startswith("required"):
            if pending is not None:
                pending.append((param, value, line))
            return
        elif re.fullmatch(r'"[^"]*"|\'[^\']*\'', value.strip()):
            literal = value.strip()[1:-1]
        elif json_type in ("integer", "number", "boolean") or re.fullmatch(
            r"[\w.\-]+", value.strip()
        ):
            literal = value.strip()
        else:
            self.note(
                line,
                f"{where} is not enforced: write a literal default in backticks "
                "(Default: `usd`), None, Auto-generated UUID, or 'Required for <value> operations'",
            )
            return
        try:
            typed = _typed(literal, json_type)
        except (ValueError, json.JSONDecodeError):
            self.note(
                line,
                f"{where}: default {literal!r} is not a {json_type}; fix the default",
                CODE_BAD_DEFAULT,
            )
            return
        enum = prop.get("enum")
        if enum is not None and typed not in enum:
            self.note(
                line,
                f"{where}: default {typed!r} is not one of the Values {enum}; fix the default",
                CODE_BAD_DEFAULT,
            )
            return
        prop["default"] = typed

    def inline_default(
        self, param: Parameter, json_type: str | None, prop: dict[str, Any], value: str
    ) -> None:
        """Agent SOP ``(optional, default: "x")``: a value unless it is prose."""
        text = value.strip()
        if re.search(r"\s", text) and json_type == "string":
            self.note(
                param.line,
                f"parameter '{param.name}': default '{text}' reads as prose, not a value: "
                'not enforced (not applied); write a literal (e.g. default: ".") or say it in '
                "the description",
            )
            return
        try:
            prop["default"] = _typed(text, json_type)
        except (ValueError, json.JSONDecodeError):
            self.note(
                param.line,
                f"parameter '{param.name}': default {text!r} is not a {json_type}; fix the default",
                CODE_BAD_DEFAULT,
            )

    def condition(
        self, param: Parameter, phrase: str, line: int
    ) -> tuple[dict[str, Any], str] | None:
        """``Required for charge operations`` -> if operation = charge then required [amount]."""
        words = {singular(w.lower()) for w in re.findall(r"[A-Za-z0-9_-]+", phrase)} | {
            w.lower() for w in re.findall(r"[A-Za-z0-9_-]+", phrase)
        }
        for other, values in self.enums.items():
            if other == param.name:
                continue
            hits = [v for v in values if isinstance(v, str) and v.lower() in words]
            if hits:
                selector: dict[str, Any] = {"const": hits[0]} if len(hits) == 1 else {"enum": hits}
                rule = {
                    "if": {"properties": {other: selector}, "required": [other]},
                    "then": {"required": [param.name]},
                }
                shown = " or ".join(repr(h) for h in hits)
                return rule, f"required when {other} is {shown} ({phrase.strip()})"
        self.note(
            line,
            f"parameter '{param.name}': 'Default: {phrase}' is not enforced: no parameter has a "
            "value it names; name an enum value (e.g. 'Required for charge operations')",
        )
        return None

    def constraints(
        self,
        param: Parameter,
        json_type: str | None,
        prop: dict[str, Any],
        value: str,
        line: int,
        where: str,
    ) -> None:
        phrases = [
            p.strip()
            for p in re.split(r"[;,]\s+(?=[A-Za-z<>=])|\s+and\s+(?![-+]?\d)", value)
            if p.strip()
        ]
        for phrase in phrases:
            if not self.constraint(param, json_type, prop, phrase):
                self.note(
                    line,
                    f"{where}: '{phrase}' is not enforced; write e.g. 'Must be positive', "
                    "'max 99999999', 'min 1', 'between 1 and 10', 'Max length: 500 characters', "
                    f"or add it to schemas/{self.sop.name}.params.schema.json",
                )

    def constraint(
        self, param: Parameter, json_type: str | None, prop: dict[str, Any], phrase: str
    ) -> bool:
        text = phrase.lower().strip().rstrip(".")
        text = re.sub(r"^(must be|must|should be|is|be)\s+", "", text)
        numeric = json_type in ("integer", "number")
        stringy = json_type in ("string", None)
        why = self.interp.why
        name = param.name

        def put(keyword: str, number: int | float) -> None:
            prop[keyword] = number
            why[(name, keyword)] = phrase.strip()

        if numeric and text in ("positive", "greater than zero", "> 0", "greater than 0"):
            put("exclusiveMinimum", 0)
            return True
        if numeric and text in (
            "non-negative",
            "nonnegative",
            "zero or positive",
            ">= 0",
            "not negative",
        ):
            put("minimum", 0)
            return True
        if numeric and text in ("negative", "< 0"):
            put("exclusiveMaximum", 0)
            return True
        # each pattern is tried only where its literal words occur: compiling one costs
        # more than the whole check, and most phrases need none of them
        between = text.startswith("between")
        m = between and re.fullmatch(rf"between\s+({_NUM})\s+and\s+({_NUM})(?:\s+\w+)?", text)
        if m and numeric:
            put("minimum", _number(m.group(1)))
            put("maximum", _number(m.group(2)))
            return True
        length = r"(?:\s+(?:characters|chars|character|bytes))?"
        m = "length" in text and re.fullmatch(
            rf"(max(?:imum)?|min(?:imum)?)\s+length:?\s+(\d+){length}", text
        )
        if m and stringy:
            put("maxLength" if m.group(1).startswith("max") else "minLength", int(m.group(2)))
            return True
        sized = "char" in text or "byte" in text
        m = sized and re.fullmatch(rf"(?:at most|max(?:imum)?|up to)\s+(\d+){length}", text)
        if m and stringy:
            put("maxLength", int(m.group(1)))
            return True
        bounds = {
            "maximum": r"(?:max(?:imum)?:?|at most|up to|<=|no more than|not more than)",
            "minimum": r"(?:min(?:imum)?:?|at least|>=|no less than|not less than)",
            "exclusiveMaximum": r"(?:less than|below|under|<)",
            "exclusiveMinimum": r"(?:greater than|more than|above|over|>)",
        }
        for keyword, words in bounds.items():
            m = re.fullmatch(rf"{words}\s*({_NUM})(?:\s+\w+)?", text)
            if m and numeric:
                put(keyword, _number(m.group(1)))
                return True
            if m and stringy and keyword in ("maximum", "minimum"):
                put("maxLength" if keyword == "maximum" else "minLength", int(_number(m.group(1))))
                return True
        return False


_OVERLAY_TTL = 1.0  # seconds a lookup is reused: one lint pass asks several times per SOP
_OVERLAYS: dict[tuple[str, str | None, str], tuple[float, Path | None]] = {}


def _overlay_path(sop: Sop) -> Path | None:
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


def _merge_overlay(interp: _Interpretation, sop: Sop, path: Path) -> None:
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


def _interpret(sop: Sop) -> _Interpretation:
    """The SOP's interpretation, kept with the Sop per overlay file and mtime (an edited
    overlay is read again; the SOP itself is immutable)."""
    overlay = _overlay_path(sop)
    stamp = f"{overlay}:{overlay.stat().st_mtime_ns}" if overlay else ""

    def build() -> _Interpretation:
        interp = _Builder(sop).build()
        if overlay is not None:
            _merge_overlay(interp, sop, overlay)
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
    properties = _interpret(sop).schema["properties"]
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        prop = properties.get(name)
        json_type = prop.get("type") if isinstance(prop, dict) else None
        if not isinstance(value, str) or not isinstance(json_type, str):
            out[name] = value
            continue
        try:
            out[name] = _coerce_one(value, json_type)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ParameterError(problems)
    return out


#: An integer as a parameter string: ASCII digits with an optional sign, nothing else
#: (``int()`` also takes Arabic-Indic or full-width digits, "1_000" and Unicode spaces).
_INTEGER = re.compile(r"[-+]?[0-9]+", re.ASCII)
#: A number likewise: ASCII decimal, optional fraction and exponent (no "inf", "nan", "1_0").
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _coerce_one(value: str, json_type: str) -> Any:
    text = value.strip(" \t\r\n")
    if json_type == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError(
                f"{value!r} is not an integer: ASCII digits 0-9 with an optional sign"
                " (amounts are integer minor units, e.g. 2500)"
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


def _is_integer(_checker: object, instance: object) -> bool:
    """Money is integer minor units: 2500.0 and True are not integers."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _pattern(validator: Validator, pattern: str, instance: Any, _schema: Any) -> Any:
    """jsonschema's ``pattern`` keyword on RE2 (engine.language.sop_regex.sop_pattern)."""
    from jsonschema import ValidationError  # lazy, as in _validator_class

    if not validator.is_type(instance, "string"):
        return
    try:
        matches = sop_pattern(pattern)(instance)
    except PatternError as exc:  # lint reports it (SOP120); never fall back to re
        yield ValidationError(f"pattern {pattern!r} cannot be used ({exc})")
        return
    if not matches:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, patterns: dict[str, Any], instance: Any, _schema: Any
) -> Any:
    """jsonschema's ``patternProperties`` keyword on RE2, as ``pattern``."""
    from jsonschema import ValidationError  # lazy, as in _validator_class

    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        try:
            search = sop_pattern(pattern)
        except PatternError as exc:
            yield ValidationError(f"pattern {pattern!r} cannot be used ({exc})")
            continue
        for key, value in instance.items():
            if search(key):
                yield from validator.descend(  # type: ignore[attr-defined]
                    value, subschema, path=key, schema_path=pattern
                )


@cache
def _validator_class() -> type[Validator]:
    # lazy: jsonschema (and its referencing/attrs) is most of an import's cost, and
    # building a schema (sop schema, graph, plan of a parameterless SOP) never needs it
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    keywords = {"pattern": _pattern, "patternProperties": _pattern_properties}
    cls: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, validators=keywords, type_checker=checker
    )
    return cls


def warm_up() -> None:
    """Import what validating needs now (jsonschema): done before forking lint workers."""
    _validator_class()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems(sop: Sop, params: Mapping[str, Any]) -> list[str]:
    """Every way ``params`` violates the SOP's schema, each 'name: what is wrong', by name
    (jsonschema decides; this module words the messages)."""
    return _problems(sop, params)[0]


def _problems(sop: Sop, params: Mapping[str, Any]) -> tuple[list[str], _Interpretation | None]:
    """:func:`problems`, and the interpretation it checked against (for the defaults)."""
    if not isinstance(params, Mapping):
        return [
            f"parameters: expected a mapping of names to values, got {type(params).__name__}"
        ], None
    bad_keys = [k for k in params if not isinstance(k, str)]
    if bad_keys:
        return [f"{_short(k)}: parameter names must be strings" for k in bad_keys], None
    interp = _interpret(sop)
    return _jsonschema_problems(interp, sop.name, params), interp


def _jsonschema_problems(
    interp: _Interpretation, sop_name: str, params: Mapping[str, Any]
) -> list[str]:
    """Problems by jsonschema: the decision and the words for a rejection."""
    validator = interp.validator()
    declared = sorted(interp.schema["properties"])
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    try:
        errors = list(validator.iter_errors(dict(params)))
    except RecursionError:
        return ["parameters: value nested too deeply"]
    for error in errors:
        for item in _explain(error, params, interp, declared, sop_name):
            if item not in seen:
                seen.add(item)
                found.append(item)
    found.sort(key=lambda item: item[0])
    return [f"{name}: {message}" for name, message in found]


def _explain(
    error: Any,
    params: Mapping[str, Any],
    interp: _Interpretation,
    declared: list[str],
    sop_name: str,
) -> list[tuple[str, str]]:
    path = list(error.absolute_path)
    keyword = error.validator
    if keyword == "additionalProperties":
        extra = [k for k in params if k not in interp.schema["properties"]]
        return [
            (
                k,
                f"unknown parameter (declared: {', '.join(declared)}); declare it in the SOP's "
                f"Parameters or in schemas/{sop_name}.params.schema.json",
            )
            for k in extra
        ]
    if keyword == "required" and not path:
        missing = [n for n in error.validator_value if n not in params]
        schema_path = list(error.absolute_schema_path)
        if schema_path and schema_path[0] == "allOf":
            index = schema_path[1] if len(schema_path) > 1 else 0
            why = (
                interp.conditions[index]
                if isinstance(index, int) and index < len(interp.conditions)
                else ""
            )
            return [(n, why or "required by a conditional rule") for n in missing]
        return [(n, "required parameter is missing") for n in missing]
    name = str(path[0]) if path else "parameters"
    where = name + "".join(f"[{p!r}]" for p in path[1:])
    phrase = interp.why.get((name, str(keyword))) if keyword not in ("pattern", "enum") else None
    suffix = f" ({phrase[:1].lower()}{phrase[1:]})" if phrase else ""
    value = error.instance
    limit = error.validator_value
    size = len(value) if isinstance(value, str) else "?"
    shown = ", ".join(repr(v) for v in limit) if isinstance(limit, list) else str(limit)
    messages = {
        "exclusiveMinimum": f"{_short(value)} is not > {limit}",
        "minimum": f"{_short(value)} is not >= {limit}",
        "exclusiveMaximum": f"{_short(value)} is not < {limit}",
        "maximum": f"{_short(value)} is not <= {limit}",
        "pattern": f"{_short(value)} does not match {limit}"
        if keyword != "pattern" or pattern_error(str(limit)) is None
        else str(error.message),  # a pattern RE2 refuses: the validator says so
        "maxLength": f"{size} characters is longer than {limit}",
        "minLength": f"{size} characters is shorter than {limit}",
        "type": f"{_short(value)} is not of type {limit}",
        "enum": f"{_short(value)} is not one of {shown}",
        "const": f"{_short(value)} is not {limit!r}",
    }
    message = messages.get(keyword)
    if message is None:
        message = str(error.message)
        message = message if len(message) <= 200 else message[:197] + "..."
    return [(where, message + suffix)]


def validate(sop: Sop, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate against the SOP's schema; all problems at once as a ParameterError.

    Returns a new dict with defaults applied and generated defaults (UUIDs) filled in.
    """
    found, interp = _problems(sop, params)
    if found or interp is None:
        raise ParameterError(found)
    out = dict(params)
    for name, prop in interp.schema["properties"].items():
        if name in out or not isinstance(prop, dict):
            continue
        if "default" in prop:
            out[name] = copy.deepcopy(prop["default"])
        elif prop.get("x-generated") == "uuid":
            out[name] = str(uuid.uuid4())
    return out
