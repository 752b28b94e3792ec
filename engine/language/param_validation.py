"""Parameter values against an SOP's schema: jsonschema decides (Draft 2020-12, integers
that are ints, formats, SOP patterns on RE2); the messages name the parameter and the
phrase of the SOP behind the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from engine.language.param_schema import Interpretation
from engine.language.sop_regex import PatternError, pattern_error, sop_pattern
from engine.language.suggest import did_you_mean

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "MONEY_HINT",
    "is_money",
    "jsonschema_problems",
    "named",
    "short",
    "validator_for",
    "warm_up",
]


def validator_for(interp: Interpretation) -> Validator:
    """The jsonschema validator of ``interp.schema``, built on first use and kept with it."""
    if interp.validator is None:
        cls = _validator_class()
        interp.validator = cls(interp.schema, format_checker=cls.FORMAT_CHECKER)
    return interp.validator


#: Said of an integer parameter the SOP calls money (``is_money``), and of no other.
MONEY_HINT = "amounts are integer minor units, e.g. 2500 for 25.00"
#: Words in a parameter's description that make it a money amount ("Amount in cents").
_MONEY_WORDS = re.compile(
    r"\b(?:cents?|minor[ -]units?|pence|pennies|centimes?|amount of money|money)\b", re.I
)


def is_money(prop: object) -> bool:
    """Whether the SOP's text calls this parameter a money amount (its description, e.g.
    "Amount in cents", or ``"x-money": true`` in the schema overlay)."""
    if not isinstance(prop, Mapping):
        return False
    if prop.get("x-money") is True:
        return True
    text = prop.get("description")
    return isinstance(text, str) and _MONEY_WORDS.search(text) is not None


def _is_integer(_checker: object, instance: object) -> bool:
    """2500.0 and True are not integers (money is integer minor units; counts are whole)."""
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


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def jsonschema_problems(
    interp: Interpretation, sop_name: str, params: Mapping[str, Any]
) -> list[str]:
    """Problems by jsonschema: the decision and the words for a rejection."""
    validator = validator_for(interp)
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
    interp: Interpretation,
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
                f"unknown parameter{did_you_mean(k, declared)} (declared: {', '.join(declared)});"
                f" declare it in the SOP's Parameters or in schemas/{sop_name}.params.schema.json",
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
        "exclusiveMinimum": f"{short(value)} is not > {limit}",
        "minimum": f"{short(value)} is not >= {limit}",
        "exclusiveMaximum": f"{short(value)} is not < {limit}",
        "maximum": f"{short(value)} is not <= {limit}",
        "pattern": f"{short(value)} does not match {limit}"
        if keyword != "pattern" or pattern_error(str(limit)) is None
        else str(error.message),  # a pattern RE2 refuses: the validator says so
        "maxLength": f"{size} characters is longer than {limit}",
        "minLength": f"{size} characters is shorter than {limit}",
        "type": f"{short(value)} is not of type {limit}",
        "enum": f"{short(value)} is not one of {shown}",
        "const": f"{short(value)} is not {limit!r}",
    }
    if keyword == "type" and limit == "integer" and is_money(interp.schema["properties"].get(name)):
        messages["type"] += f" ({MONEY_HINT})"
    message = messages.get(keyword)
    if message is None:
        message = str(error.message)
        message = message if len(message) <= 200 else message[:197] + "..."
    return [(where, message + suffix)]


def named(problem: str) -> str:
    """The parameter a problem line names (``amount: ...``, ``meta['k']: ...`` -> meta)."""
    head = problem.partition(": ")[0]
    return head.partition("[")[0]
