"""Parameters section -> JSON Schema 2020-12: the SOP's prose is the source of truth.

``Values``, ``Format``, ``Default``, ``Constraints`` and ``Max length`` lines become
schema keywords. A phrase this module does not understand is never silently dropped:
it becomes a note (SOP121, or SOP120/SOP124 errors) that lint reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.language.sop_regex import PATTERN_RULES, pattern_error
from engine.language.words import singular
from engine.model import Diagnostic, Parameter, Severity, Sop

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Diagnostic codes this module emits (documented with the rest in engine.language.lint).
CODE_UNENFORCED = "SOP121"
CODE_BAD_REGEX = "SOP120"
CODE_BAD_DEFAULT = "SOP124"

#: parameter type words -> JSON Schema types (``sop rule`` prints them)
TYPES: dict[str, str] = {
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

_IGNORED_KEYS = {"description", "note", "notes", "example", "examples"}
#: a parameter's ``Key: value`` details the schema enforces, by role (``sop rule`` prints it)
DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    "values": ("values", "allowed values", "enum", "one of"),
    "format": ("format", "pattern"),
    "default": ("default",),
    "constraints": ("constraints", "constraint", "range", "limits"),
    "bounds": (
        "max length",
        "maximum length",
        "min length",
        "minimum length",
        "min",
        "minimum",
        "max",
        "maximum",
    ),
    "description": ("description",),
    "examples": ("example", "examples"),
}
_NUM = r"[-+]?\d[\d,_]*(?:\.\d+)?"


@dataclass(eq=False)  # one per SOP, filled by Builder: identity is its equality
class Interpretation:
    """Everything derived from one SOP's Parameters: schema, why each keyword exists, notes."""

    schema: dict[str, Any]
    why: dict[tuple[str, str], str] = field(default_factory=dict)  # (param, keyword) -> phrase
    conditions: list[str] = field(default_factory=list)  # allOf[i] -> phrase
    notes: list[Diagnostic] = field(default_factory=list)
    overlay: Path | None = None
    #: jsonschema's validator of ``schema``, built on first use (engine.language.param_validation)
    validator: Validator | None = None


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


class Builder:
    """One SOP's Parameters section -> its :class:`Interpretation`."""

    def __init__(self, sop: Sop) -> None:
        self.sop = sop
        self.interp = Interpretation(schema={})
        self.enums: dict[str, list[Any]] = {}

    def note(self, line: int, message: str, code: str = CODE_UNENFORCED) -> None:
        severity = (
            Severity.ERROR if code in (CODE_BAD_REGEX, CODE_BAD_DEFAULT) else Severity.WARNING
        )
        self.interp.notes.append(Diagnostic(code, severity, message, line, 1, self.sop.path))

    def build(self) -> Interpretation:
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
            json_type = TYPES.get(param.type.strip().lower())
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
            if key in DETAIL_KEYS["values"]:
                self.enum(param, json_type, prop, value, attr.line, where)
            elif key in DETAIL_KEYS["format"]:
                self.format(param, prop, value, attr.line, where)
            elif key == "default":
                self.default(param, json_type, prop, value, attr.line, where, pending)
            elif key in DETAIL_KEYS["constraints"]:
                self.constraints(param, json_type, prop, value, attr.line, where)
            elif key in DETAIL_KEYS["bounds"]:
                self.constraints(param, json_type, prop, f"{attr.key} {value}", attr.line, where)
            elif key == "description":
                if value:
                    descriptions.append(value)
            elif key in DETAIL_KEYS["examples"]:
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
        if "default" in prop:
            self.default_fits(param, prop)
        return prop

    def default_fits(self, param: Parameter, prop: dict[str, Any]) -> None:
        """A default must pass its own property (Format, bounds, length): the engine applies
        it after validating the caller's values, so a default that breaks its Format would
        reach a handler unchecked. Such a default is an error and is not applied."""
        from jsonschema import Draft202012Validator

        rules = {k: v for k, v in prop.items() if k != "default"}
        checker = Draft202012Validator.FORMAT_CHECKER
        problem = next(Draft202012Validator(rules, format_checker=checker).iter_errors(
            prop["default"]), None)  # fmt: skip
        if problem is None:
            return
        line = next(
            (a.line for a in param.attributes if a.key.strip().lower() == "default"), param.line
        )
        self.note(
            line,
            f"parameter '{param.name}': default {prop.pop('default')!r} breaks its own rules"
            f" ({problem.message}); fix the default",
            CODE_BAD_DEFAULT,
        )

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
