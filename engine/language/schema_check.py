"""Accept-only fast check for the JSON Schema subset that engine.language.params generates.

Why: jsonschema's ``iter_errors`` costs a few hundred microseconds per run on the
seed SOP's parameter schema, most of it machinery (validator objects, error
generators, resolvers) that a valid input never needs. :func:`compile_schema`
turns a schema into plain Python closures, once, that only answer "valid?".
A yes lets the caller skip jsonschema; a no sends the caller to jsonschema for the
messages. So the one rule is: the check may never accept what jsonschema rejects.

How that holds: every keyword mirrors jsonschema 4's ``_keywords`` expression for
expression (same comparisons, ``len`` in code points, ``equal``
with True != 1); any keyword, keyword value or subschema outside the subset makes
the whole schema unsupported (``None``: always use jsonschema); any instance value
that is not an exact JSON type (str, int, float, bool, None, list, dict) is
refused rather than reasoned about; an exception inside the check is a refusal.
``pattern`` is the one keyword both sides answer with the same function,
:func:`sop_pattern` (RE2), which engine.language.params also installs in jsonschema.

SOP patterns (a parameter's ``Format``, an overlay's ``pattern``) are written by
whoever writes the SOP and matched against whatever a caller sends, so they run on
RE2: time linear in the input, whatever the pattern (``(a+)+$`` included). A pattern
RE2 cannot compile (backreferences, lookaround) is a lint error, never matched with
Python's backtracking ``re``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, NoReturn

#: ``check(instance) -> True`` only when jsonschema would report no error.
Check = Callable[[Any], bool]
#: ``conforms(instance, format_name)``: the validator's format checker (jsonschema's own).
Conforms = Callable[[Any, str], bool]

#: Keywords with no effect on validity (jsonschema has no validator for them).
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly"}
    | {"writeOnly"}
)
#: Only meaningful at the root: the validator class is fixed there and nothing uses ``$ref``.
ROOT_ONLY = frozenset({"$schema", "$id"})
#: Every keyword the checker enforces (``then``/``else`` only beside ``if``).
KEYWORDS = frozenset(
    {"type", "enum", "const", "pattern", "minLength", "maxLength", "format", "not"}
    | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf", "if"}
    | {"then", "else", "properties", "required", "additionalProperties"}
)

_JSON_TYPES = frozenset({str, int, float, bool, type(None), list, dict})
_NUMBERS = (int, float)


class PatternError(ValueError):
    """An SOP pattern RE2 cannot compile; the message says why."""


#: What RE2 leaves out, said once in every message about a pattern it refuses.
PATTERN_RULES = (
    "patterns are matched by RE2 in linear time: no backreferences (\\1) or lookaround "
    "((?=...), (?!...), (?<=...), (?<!...))"
)


@lru_cache(maxsize=1024)
def sop_pattern(pattern: str) -> Callable[[str], bool]:
    """``search(text)``: whether ``pattern`` matches somewhere in ``text`` (``re.search``).

    RE2 semantics where they differ from Python's ``re``: ``\\d``/``\\w``/``\\s`` are
    ASCII, and ``$`` is the end of the text (as in ECMA-262, which JSON Schema names),
    not also before a final newline. Raises :class:`PatternError`.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "cannot compile"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(str(reason)) from None
    except (UnicodeEncodeError, TypeError) as exc:  # a lone surrogate in the pattern
        raise PatternError(type(exc).__name__) from None
    match = compiled.search

    def search(text: str) -> bool:
        try:
            return match(text) is not None
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for RE2, so no match
            return False

    return search


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an SOP pattern (RE2's reason), or None."""
    try:
        sop_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


class Unsupported(ValueError):
    """The schema uses something outside the subset: validate it with jsonschema only."""


def is_integer(instance: object) -> bool:
    """Money is integer minor units: 2500.0 and True are not integers."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPE_TESTS: dict[str, Check] = {
    # exact types: the gate in _all has already refused every other type
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


def compile_schema(schema: object, *, conforms: Conforms | None = None) -> Check | None:
    """A fast check for ``schema``, or None when any part of it is outside the subset.

    ``conforms`` is the validator's format checker; without one, ``format`` is an
    annotation, as it is for a jsonschema validator built without a format checker.
    """
    try:
        check = _node(schema, conforms, root=True)
    except (Unsupported, RecursionError, OverflowError, ValueError, TypeError):
        return None

    def guarded(instance: Any) -> bool:
        try:
            return check(instance)
        except Exception:  # _Refused, or a surprise: jsonschema then decides and explains
            return False

    return guarded


# --------------------------------------------------------------------------- nodes


def _accept(_instance: Any) -> bool:
    return True


def _reject(_instance: Any) -> bool:
    return False


def _node(schema: object, conforms: Conforms | None, *, root: bool = False) -> Check:
    """One (sub)schema -> the conjunction of its keywords' checks, behind the JSON-type gate."""
    if schema is True:
        return _accept
    if schema is False:
        return _reject
    if not isinstance(schema, dict):
        raise Unsupported(f"schema {schema!r} is not an object or boolean")
    for key in schema:
        if not isinstance(key, str):
            raise Unsupported(f"keyword {key!r}")
        known = key in KEYWORDS or key in ANNOTATIONS or key.startswith("x-")
        if not known and not (root and key in ROOT_ONLY):
            raise Unsupported(f"keyword {key!r}")
    if ("then" in schema or "else" in schema) and "if" not in schema:
        raise Unsupported("then/else without if")
    checks = [
        *_types(schema),
        *_values(schema),
        *_strings(schema, conforms),
        *_numbers(schema),
        *_objects(schema, conforms),
        *_applicators(schema, conforms),
    ]
    return _all(checks)


class _Refused(Exception):
    """A value the check will not reason about (not an exact JSON type): the answer is no."""


def _refuse(value: object) -> NoReturn:
    # Raised, not returned: a False under `not` or `if` would turn into an accept.
    raise _Refused(type(value).__name__)


def _all(checks: list[Check]) -> Check:
    """The gate plus every check; unrolled for the common sizes (this runs per value).

    Past the gate every keyword is exact, never merely cautious: that is what makes
    ``not`` and ``if`` (which use a subschema's answer both ways) safe.
    """
    json_types = _JSON_TYPES
    if not checks:
        return lambda v: type(v) in json_types or _refuse(v)
    if len(checks) == 1:
        (one,) = checks
        return lambda v: (type(v) in json_types or _refuse(v)) and one(v)
    if len(checks) == 2:
        first, second = checks
        return lambda v: (type(v) in json_types or _refuse(v)) and first(v) and second(v)
    every = tuple(checks)

    def conjunction(v: Any) -> bool:
        if type(v) not in json_types:
            _refuse(v)
        for check in every:  # noqa: SIM110 - a loop is 4x faster than all(genexpr) here
            if not check(v):
                return False
        return True

    return conjunction


def _types(schema: dict[str, Any]) -> list[Check]:
    if "type" not in schema:
        return []
    names = schema["type"]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(
        isinstance(n, str) and n in _TYPE_TESTS for n in names
    ):
        raise Unsupported(f"type {schema['type']!r}")
    tests = tuple(_TYPE_TESTS[n] for n in names)
    if len(tests) == 1:
        return [tests[0]]
    return [lambda v: any(t(v) for t in tests)]


_T, _F = object(), object()  # stand-ins for True/False, as jsonschema's unbool uses


def _unbool(value: object) -> object:
    return _T if value is True else _F if value is False else value


def _equal(expected: object, value: object) -> bool:
    """jsonschema's ``equal`` for a scalar ``expected`` (True != 1, 1 == 1.0)."""
    if expected is value:
        return True
    if isinstance(expected, str) or isinstance(value, str):
        return expected == value
    return _unbool(expected) == _unbool(value)


def _scalar(value: object) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def _values(schema: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if "enum" in schema:
        options = schema["enum"]
        if not isinstance(options, list) or not all(_scalar(o) for o in options):
            raise Unsupported("enum other than a list of scalars")
        if all(type(o) is str for o in options):
            # str == anything but a str is False, so membership in a set is equal()
            strings = frozenset(options)
            checks.append(lambda v: type(v) is str and v in strings)
        else:
            choices = tuple(options)
            checks.append(lambda v: any(_equal(o, v) for o in choices))
    if "const" in schema:
        const = schema["const"]
        if not _scalar(const):
            raise Unsupported("const other than a scalar")
        if type(const) is str:
            checks.append(lambda v: v == const)  # equal() compares strings with ==
        else:
            checks.append(lambda v: _equal(const, v))
    return checks


def _count(schema: dict[str, Any], key: str) -> int | float:
    value = schema[key]
    if type(value) not in _NUMBERS:
        raise Unsupported(f"{key} {value!r}")
    number: int | float = value
    return number


def _strings(schema: dict[str, Any], conforms: Conforms | None) -> list[Check]:
    checks: list[Check] = []
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            raise Unsupported("pattern other than a string")
        search = sop_pattern(schema["pattern"])  # what the validator's pattern keyword does
        checks.append(lambda v: type(v) is not str or search(v))
    if "minLength" in schema:
        shortest = _count(schema, "minLength")
        checks.append(lambda v: type(v) is not str or not len(v) < shortest)
    if "maxLength" in schema:
        longest = _count(schema, "maxLength")
        checks.append(lambda v: type(v) is not str or not len(v) > longest)
    if "format" in schema:
        name = schema["format"]
        if not isinstance(name, str):
            raise Unsupported("format other than a string")
        if conforms is not None:
            checker = conforms
            checks.append(lambda v: checker(v, name))
    return checks


def _numbers(schema: dict[str, Any]) -> list[Check]:
    # written as jsonschema writes them (reject when `v < m`), so NaN behaves the same
    checks: list[Check] = []
    if "minimum" in schema:
        low = _count(schema, "minimum")
        checks.append(lambda v: type(v) not in _NUMBERS or not v < low)
    if "maximum" in schema:
        high = _count(schema, "maximum")
        checks.append(lambda v: type(v) not in _NUMBERS or not v > high)
    if "exclusiveMinimum" in schema:
        above = _count(schema, "exclusiveMinimum")
        checks.append(lambda v: type(v) not in _NUMBERS or not v <= above)
    if "exclusiveMaximum" in schema:
        below = _count(schema, "exclusiveMaximum")
        checks.append(lambda v: type(v) not in _NUMBERS or not v >= below)
    return checks


def _objects(schema: dict[str, Any], conforms: Conforms | None) -> list[Check]:
    checks: list[Check] = []
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
        raise Unsupported("properties other than an object")
    table = {name: _node(sub, conforms) for name, sub in properties.items()}
    pairs = tuple(table.items())
    if table:

        def each_property(v: Any) -> bool:
            # the keys both have, as jsonschema visits them; walk whichever side is shorter
            if type(v) is not dict:
                return True
            if len(pairs) <= len(v):
                for name, check in pairs:  # noqa: SIM110 - hot path, see _all
                    if name in v and not check(v[name]):
                        return False
                return True
            for key, item in v.items():
                found = table.get(key)
                if found is not None and not found(item):
                    return False
            return True

        checks.append(each_property)
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            raise Unsupported("required other than a list of names")
        names = tuple(required)
        if names:
            checks.append(lambda v: type(v) is not dict or all(n in v for n in names))
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        declared = frozenset(properties)
        if extra is False:
            checks.append(lambda v: type(v) is not dict or declared.issuperset(v))
        elif isinstance(extra, dict):
            other = _node(extra, conforms)

            def extras(v: Any) -> bool:
                if type(v) is not dict:
                    return True
                return all(other(item) for key, item in v.items() if key not in declared)

            checks.append(extras)
        elif extra is not True:
            raise Unsupported("additionalProperties other than a boolean or a schema")
    return checks


def _applicators(schema: dict[str, Any], conforms: Conforms | None) -> list[Check]:
    checks: list[Check] = []
    if "allOf" in schema:
        parts = schema["allOf"]
        if not isinstance(parts, list):
            raise Unsupported("allOf other than a list")
        subs = tuple(_node(part, conforms) for part in parts)

        def every_part(v: Any) -> bool:
            for sub in subs:  # noqa: SIM110 - hot path, see _all
                if not sub(v):
                    return False
            return True

        checks.append(every_part)
    if "if" in schema:
        when = _node(schema["if"], conforms)
        then = _node(schema["then"], conforms) if "then" in schema else _accept
        otherwise = _node(schema["else"], conforms) if "else" in schema else _accept
        checks.append(lambda v: then(v) if when(v) else otherwise(v))
    if "not" in schema:
        negated = _node(schema["not"], conforms)
        checks.append(lambda v: not negated(v))
    return checks
