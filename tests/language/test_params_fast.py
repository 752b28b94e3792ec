"""The fast accept check (language.schema_check) agrees with jsonschema, and problems() uses it.

The one safety property: the fast check never accepts what jsonschema rejects. For
schemas in its subset and JSON values it must agree exactly (so it also never sends
valid input the slow way). Checked over the real SOPs' schemas and over random
schemas of the subset, with values aimed at the edges: bools vs ints, 2500.0,
NaN, bounds +-1 and +-0.5, strings one code point either side of a length limit,
regex matches with a trailing newline, missing and extra keys.
"""

from __future__ import annotations

import decimal
import enum
import json
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from engine.language import params as params_module
from engine.language.catalog import load
from engine.language.params import (
    _jsonschema_problems,
    _keyed,
    _validator,
    _validator_class,
    problems,
)
from engine.language.schema_check import Check, compile_schema
from engine.model import Sop
from tests.support.sops import make_sop, param, seed_like

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

REAL_PATHS = [
    ROOT / "sops" / "payment-processing.sop.md",
    ROOT / "sops" / "refund-handling.sop.md",
    ROOT / "sops" / "subscription-management.sop.md",
    ROOT / "tests" / "fixtures" / "agent-sop" / "codebase-summary.sop.md",
    ROOT / "tests" / "fixtures" / "agent-sop" / "pdd.sop.md",
    *sorted((ROOT / "tests" / "fixtures" / "agent-sop").glob("*.sop.md")),
]
_LOADED = [load(str(path)) for path in REAL_PATHS]
REAL: list[Sop] = list({sop.content_hash: sop for sop in _LOADED}.values())


def jsonschema_for(schema: Any) -> Any:
    """The validator problems() falls back to: Draft 2020-12, our integer rule, formats."""
    cls = _validator_class()
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def fast_for(schema: Any) -> Check | None:
    return compile_schema(schema, conforms=_validator_class().FORMAT_CHECKER.conforms)


# --------------------------------------------------------------------------- values

FORMAT_SAMPLES = [
    "a@b",
    "no-at-sign",
    "18d07684-7671-5030-b327-03fa545498ec",
    "18d0768476715030b32703fa545498ec",
    "2024-01-31",
    "2024-02-30",
    "1.2.3.4",
    "256.1.1.1",
    "::1",
    "fe80::1%eth0",
    "",
]
EDGE_VALUES: list[Any] = [
    True,
    False,
    None,
    0,
    1,
    -1,
    0.0,
    -0.0,
    1.0,
    2500,
    2500.0,
    2500.5,
    99999999,
    100000000,
    10**30,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "usd",
    "USD",
    "charge",
    "cus_",
    "cus_ABC123",
    "cus_ABC123\n",
    "é" * 3,
    "\U0001f600" * 3,
    [],
    ["charge"],
    {},
    {"operation": "charge"},
]
json_values: SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(EDGE_VALUES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _bounds(schema: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            b = schema[key]
            out += [b, b - 1, b + 1, b - 0.5, b + 0.5, float(b)]
    return out


def _lengths(schema: dict[str, Any]) -> SearchStrategy[str] | None:
    sizes = [int(schema[k]) for k in ("minLength", "maxLength") if k in schema]
    if not sizes:
        return None
    alphabet = st.sampled_from("ab\u00e9\U0001f600\n")
    return st.one_of([st.text(alphabet, min_size=max(0, n - 1), max_size=n + 1) for n in sizes])


def fitting(schema: dict[str, Any]) -> SearchStrategy[Any] | None:
    """Values likely to satisfy a property schema, so that valid input is common too."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    low, high = schema.get("minLength", 0), schema.get("maxLength", 10**9)
    if low > high:
        return None
    if isinstance(schema.get("pattern"), str):
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
    kind = schema.get("type")
    if kind == "string":
        return st.text(min_size=low, max_size=min(high, low + 8))
    if kind == "integer":
        least = math.ceil(max(schema.get("minimum", -(10**9)), -(10**9)))
        most = math.floor(min(schema.get("maximum", 10**9), 10**9))
        least = max(least, math.floor(schema.get("exclusiveMinimum", -(10**10))) + 1)
        most = min(most, math.ceil(schema.get("exclusiveMaximum", 10**10)) - 1)
        return st.integers(least, most) if least <= most else None
    if kind == "boolean":
        return st.booleans()
    return None


def values_for(schema: Any, depth: int = 0) -> SearchStrategy[Any]:
    """Values aimed at ``schema``: mostly fitting ones, else its edges and junk."""
    options: list[SearchStrategy[Any]] = [json_values]
    if not isinstance(schema, dict):
        return json_values
    good = fitting(schema)
    if good is not None:
        options += [good] * 6
    literals = [*schema.get("enum", []), *_bounds(schema)]
    if "const" in schema:
        literals.append(schema["const"])
    if literals:
        options.append(st.sampled_from(literals))
    if isinstance(schema.get("pattern"), str):
        pattern: str = schema["pattern"]
        matches = st.from_regex(pattern)
        options += [matches, matches.map(lambda s: s + "\n"), matches.map(lambda s: s[:-1])]
    lengths = _lengths(schema)
    if lengths is not None:
        options.append(lengths)
    if "format" in schema:
        options.append(st.sampled_from(FORMAT_SAMPLES))
    if "integer" in str(schema.get("type")) or "number" in str(schema.get("type")):
        options.append(st.integers(-3, 3) | st.integers(1, 99999999))
    if isinstance(schema.get("properties"), dict) and depth < 2:
        options.append(params_for(schema, depth + 1))
    if "not" in schema:
        options.append(values_for(schema["not"], depth + 1))
    return st.one_of(options)


def params_for(schema: dict[str, Any], depth: int = 0) -> SearchStrategy[dict[str, Any]]:
    """Objects that mostly use the schema's own names, in four flavours.

    All fitting values with every required and conditionally required name (mostly
    valid, so accepting is exercised); the same with edge values; any subset of
    names; any of those plus strangers.
    """
    properties: dict[str, Any] = schema.get("properties", {})
    subschemas = dict(properties)
    needed = [n for n in schema.get("required", []) if isinstance(n, str)]
    for rule in schema.get("allOf", []):
        for part in ("if", "then", "else"):
            sub = rule.get(part) if isinstance(rule, dict) else None
            if not isinstance(sub, dict):
                continue
            for name, inner in sub.get("properties", {}).items():
                subschemas.setdefault(name, inner)
            needed += [n for n in sub.get("required", []) if part == "then"]
    wild = {name: values_for(sub, depth) for name, sub in subschemas.items()}
    tame = {name: _fitting_or(sub, wild[name]) for name, sub in subschemas.items()}

    def shaped(values: dict[str, SearchStrategy[Any]]) -> SearchStrategy[dict[str, Any]]:
        always = {n: values.get(n, json_values) for n in needed}
        return st.fixed_dictionaries(
            always, optional={n: v for n, v in values.items() if n not in always}
        )

    present = st.one_of(shaped(tame), shaped(wild), st.fixed_dictionaries({}, optional=wild))
    strangers = st.sampled_from(["x", "Operation", ""]) | st.text(max_size=5)
    extras = st.dictionaries(strangers, json_values, min_size=1, max_size=2)
    return st.one_of(
        present, present, present, st.tuples(present, extras).map(lambda t: {**t[1], **t[0]})
    )


def _fitting_or(schema: Any, otherwise: SearchStrategy[Any]) -> SearchStrategy[Any]:
    good = fitting(schema) if isinstance(schema, dict) else None
    return otherwise if good is None else good


# --------------------------------------------------------------------------- real schemas


def test_every_real_schema_is_in_the_subset() -> None:
    assert len(REAL) >= 5
    for sop in REAL:
        assert _validator(sop)[1] is not None, sop.name


@pytest.mark.parametrize(
    "sop", REAL, ids=lambda sop: f"{sop.name}@{Path(sop.path or '').parent.name}"
)
def test_real_schema_agrees_with_jsonschema(sop: Sop) -> None:
    validator, fast, interp = _validator(sop)
    assert fast is not None
    accepted: list[bool] = []

    @SETTINGS
    @given(params_for(interp.schema))
    def agree(params: dict[str, Any]) -> None:
        expected = validator.is_valid(params)
        assert fast(params) == expected, params
        accepted.append(expected)
        found = problems(sop, params)
        assert found == _jsonschema_problems(validator, interp, sop.name, params)
        assert (found == []) == expected

    agree()
    assert any(accepted) and not all(accepted)  # both answers were exercised


@pytest.mark.parametrize(
    "params",
    [
        {"operation": "charge", "customer_id": "cus_ABC123", "amount": 2500, "currency": "usd"},
        {"operation": "refund", "customer_id": "cus_A", "payment_intent": "pi_1", "amount": 1},
        {"operation": "subscription", "customer_id": "cus_A", "plan": "price_basic"},
        {
            "operation": "subscription",
            "customer_id": "cus_A",
            "subscription_action": "cancel",
            "subscription_id": "sub_1",
        },
        {"operation": "charge", "customer_id": "cus_A", "amount": 99999999},
    ],
)
def test_seed_valid_params_take_the_fast_path(params: dict[str, Any]) -> None:
    sop = load(str(REAL_PATHS[0]))
    validator, fast, _ = _validator(sop)
    assert fast is not None and fast(params) and validator.is_valid(params)
    assert problems(sop, params) == []


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (
            {"operation": "charge", "customer_id": "cus_A", "amount": 2500.0},
            "amount: 2500.0 is not of type integer",
        ),
        (
            {"operation": "charge", "customer_id": "cus_A", "amount": True},
            "amount: True is not of type integer",
        ),
        (
            {"operation": "charge", "customer_id": "cus_A", "amount": 0},
            "amount: 0 is not > 0 (must be positive)",
        ),
        (
            {"operation": "charge", "customer_id": "cus_A"},
            "amount: required when operation is 'charge' (Required for charge operations)",
        ),
        (
            {"operation": "charge", "customer_id": "cus_A", "amount": 1, "x": 1},
            "x: unknown parameter (declared: amount, currency, customer_id, description,",
        ),
        (  # RE2, as ECMA-262: $ is the end of the value, not also before a final newline
            {"operation": "charge", "customer_id": "cus_A\n", "amount": 1},
            "customer_id: 'cus_A\\n' does not match ^cus_[a-zA-Z0-9]+$",
        ),
        (
            {"operation": "charge", "customer_id": "cus_A", "amount": 1, "description": "é" * 501},
            "description: 501 characters is longer than 500 (max length 500 characters)",
        ),
    ],
)
def test_seed_rejections_keep_their_words(params: dict[str, Any], problem: str) -> None:
    sop = load(str(REAL_PATHS[0]))
    _, fast, _ = _validator(sop)
    assert fast is not None and not fast(params)
    found = problems(sop, params)
    assert len(found) == 1 and found[0].startswith(problem), found


# --------------------------------------------------------------------------- every keyword

FORMATS = ["email", "uuid", "date", "ipv4", "ipv6", "made-up"]
IF_CHARGE = {"properties": {"operation": {"const": "charge"}}, "required": ["operation"]}
KEYWORD_SCHEMAS: list[Any] = [
    True,
    False,
    {},
    *({"type": t} for t in ["string", "integer", "number", "boolean", "null", "array", "object"]),
    {"type": ["integer", "null"]},
    {"type": ["string", "number"]},
    {"enum": ["charge", "refund"]},
    {"enum": [1, "a", None]},
    {"enum": [True]},
    {"enum": [0]},
    {"enum": [1.0, False, ""]},
    *({"const": c} for c in ["charge", 2500, 2500.0, True, False, None, 0, ""]),
    {"pattern": "^cus_[a-zA-Z0-9]+$"},
    {"pattern": "^[a-z]{3}$"},
    {"pattern": "\u00e9"},
    {"minLength": 3},
    {"maxLength": 3},
    {"maxLength": 0},
    {"minLength": 1, "maxLength": 1},
    {"minimum": 0},
    {"maximum": 2500},
    {"exclusiveMinimum": 0},
    {"exclusiveMaximum": 2500},
    {"minimum": 2500.5},
    {"maximum": 99999999, "exclusiveMinimum": 0, "type": "integer"},
    *({"format": f} for f in FORMATS),
    {"not": {"const": "cancel"}},
    {"not": {"type": "integer"}},
    {"required": ["operation"]},
    {"properties": {"operation": {"const": "charge"}}},
    {"additionalProperties": False},
    {"properties": {"operation": {}}, "additionalProperties": False},
    {"additionalProperties": {"type": "string"}},
    {"allOf": [{"type": "number"}, {"minimum": 1}]},
    {"if": IF_CHARGE, "then": {"required": ["amount"]}},
    {"if": IF_CHARGE, "then": {"required": ["amount"]}, "else": {"required": ["x"]}},
    {"if": True, "else": False},
]
GRID_VALUES: list[Any] = [
    *EDGE_VALUES,
    *FORMAT_SAMPLES,
    {"operation": "charge", "amount": 1},
    {"operation": "refund"},
    {"operation": True},
    {"x": 1},
    {"x": "1"},
]


def test_each_keyword_agrees_on_every_edge_value() -> None:
    """Deterministic: every supported keyword against every edge value, both ways."""
    wrong = []
    for schema in KEYWORD_SCHEMAS:
        fast = fast_for(schema)
        assert fast is not None, schema
        validator = jsonschema_for(schema)
        wrong += [(schema, v) for v in GRID_VALUES if fast(v) != validator.is_valid(v)]
    assert wrong == []


# --------------------------------------------------------------------------- random schemas

SCALARS = st.sampled_from(["a", "charge", "", "é", 0, 1, 1.0, -1, 2500, 2500.0, True, False, None])
NUMBERS = st.sampled_from([-1, 0, 1, 0.5, 2500, 2500.5, 99999999, -1e308, 1e308]) | st.integers()
PATTERNS = st.sampled_from(
    [
        "^[a-z]{3}$",
        "^cus_[a-zA-Z0-9]+$",
        "a|b",
        "^(?:(plan|price)_[a-zA-Z0-9_]+)$",
        r"\d",
        "^$",
        "é",
    ]
)
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
NAME_LIST = ["operation", "amount", "a", "b", "c"]
NAMES = st.sampled_from(NAME_LIST)


@st.composite
def leaf_schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A property schema: any mix of the value keywords, whatever the type says."""
    schema: dict[str, Any] = {}
    if draw(st.booleans()):
        schema["type"] = draw(TYPES | st.lists(TYPES, min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 3)) == 0:
        schema["enum"] = draw(st.lists(SCALARS, min_size=1, max_size=4))
    if draw(st.integers(0, 5)) == 0:
        schema["const"] = draw(SCALARS)
    if draw(st.integers(0, 2)) == 0:
        schema["pattern"] = draw(PATTERNS)
    for key in ("minLength", "maxLength"):
        if draw(st.integers(0, 3)) == 0:
            schema[key] = draw(st.integers(0, 4))
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 3)) == 0:
            schema[key] = draw(NUMBERS)
    if draw(st.integers(0, 5)) == 0:
        schema["format"] = draw(
            st.sampled_from(["email", "uuid", "date", "ipv4", "ipv6", "made-up"])
        )
    if depth < 1 and draw(st.integers(0, 5)) == 0:
        schema["not"] = draw(leaf_schemas(depth + 1))
    if depth < 1 and draw(st.integers(0, 6)) == 0:
        schema.update(draw(object_schemas(depth + 1)))
    if draw(st.booleans()):
        schema["description"] = "d"
        schema["x-generated"] = "uuid"
        schema["default"] = draw(SCALARS)
        schema["examples"] = ["e"]
    return schema


@st.composite
def condition_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """The `if` of an allOf rule: a const/enum/not-const on one or two names, maybe required."""
    names = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    selectors = st.one_of(
        SCALARS.map(lambda v: {"const": v}),
        st.lists(SCALARS, min_size=1, max_size=3).map(lambda v: {"enum": v}),
        SCALARS.map(lambda v: {"not": {"const": v}}),
    )
    schema: dict[str, Any] = {"properties": {n: draw(selectors) for n in names}}
    if draw(st.booleans()):
        schema["required"] = names
    return schema


@st.composite
def object_schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    names = draw(st.lists(NAMES, max_size=4, unique=True))
    schema: dict[str, Any] = {"type": "object"} if draw(st.booleans()) else {}
    schema["properties"] = {n: draw(leaf_schemas(depth) | st.booleans()) for n in names}
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(NAMES, max_size=3, unique=True))
    extra = draw(st.sampled_from(["absent", "false", "true", "schema"]))
    if extra != "absent":
        schema["additionalProperties"] = {"false": False, "true": True}.get(extra) or draw(
            leaf_schemas(1)
        )
    rules = []
    for _ in range(draw(st.integers(0, 3 if depth == 0 else 1))):
        rule: dict[str, Any] = {"if": draw(condition_schemas())}
        if draw(st.integers(0, 4)):
            rule["then"] = {"required": draw(st.lists(NAMES, min_size=1, max_size=2))}
        if draw(st.integers(0, 3)) == 0:
            rule["else"] = draw(leaf_schemas(1))
        if draw(st.booleans()):
            rule["description"] = "required when ..."
        rules.append(rule)
    if rules:
        schema["allOf"] = rules
    if depth == 0 and draw(st.booleans()):
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = "urn:sop:random:params"
        schema["x-sop-version"] = "1.0.0"
    return schema


@SETTINGS
@given(st.data())
def test_random_subset_schema_agrees_with_jsonschema(data: st.DataObject) -> None:
    schema = data.draw(object_schemas())
    fast = fast_for(schema)
    assert fast is not None, schema
    validator = jsonschema_for(schema)
    for _ in range(4):
        instance = data.draw(params_for(schema))
        assert fast(instance) == validator.is_valid(instance), (schema, instance)


@SETTINGS
@given(st.data())
def test_random_subset_leaf_agrees_on_any_json_value(data: st.DataObject) -> None:
    schema = data.draw(leaf_schemas())
    fast = fast_for(schema)
    assert fast is not None, schema
    validator = jsonschema_for(schema)
    for _ in range(4):
        value = data.draw(values_for(schema))
        assert fast(value) == validator.is_valid(value), (schema, value)


class Level(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


ODD_VALUES = [
    decimal.Decimal(1),
    decimal.Decimal("2500.0"),
    complex(1, 0),
    Level.ONE,
    Text("charge"),
    (1,),
    b"charge",
    {1},
    object(),
]


@SETTINGS
@given(object_schemas(), NAMES, st.sampled_from(ODD_VALUES))
def test_non_json_values_are_never_wrongly_accepted(
    schema: dict[str, Any], name: str, odd: Any
) -> None:
    """A value the check looks at and that is not exactly JSON is refused: jsonschema decides."""
    fast = fast_for(schema)
    assert fast is not None
    for instance in ({name: odd}, {name: {name: odd}}, {name: [odd]}):
        if fast(instance):
            assert jsonschema_for(schema).is_valid(instance), (schema, instance)
    looked_at = schema["properties"].get(name, True) is not True or (
        name not in schema["properties"] and schema.get("additionalProperties", True) is not True
    )
    if looked_at:
        assert not fast({name: odd})


def test_a_refusal_under_not_is_not_an_accept() -> None:
    """Decimal is a jsonschema number: inner valid, so `not` fails; a False there would pass."""
    schema = {"properties": {"p": {"not": {"properties": {"a": {"type": "number"}}}}}}
    instance = {"p": {"a": decimal.Decimal(1)}}
    assert not jsonschema_for(schema).is_valid(instance)
    fast = fast_for(schema)
    assert fast is not None and not fast(instance)


# --------------------------------------------------------------------------- fall-back


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"multipleOf": 100}}},
        {"properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"properties": {"a": {"oneOf": [{"type": "string"}]}}},
        {"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}},
        {"properties": {"a": {"items": {"type": "string"}}}},
        {"properties": {"a": {"minItems": 1}}},
        {"patternProperties": {"^x": {}}},
        {"unevaluatedProperties": False},
        {"dependentRequired": {"a": ["b"]}},
        {"propertyNames": {"maxLength": 3}},
        {"properties": {"a": {"$schema": "https://json-schema.org/draft/2020-12/schema"}}},
        {"properties": {"a": {"then": {"required": ["b"]}}}},
        {"properties": {"a": {"type": "decimal"}}},
        {"properties": {"a": {"minimum": "5"}}},
        {"properties": {"a": {"maxLength": True}}},
        {"properties": {"a": {"pattern": "("}}},
        {"properties": {"a": {"enum": "abc"}}},
        {"properties": {"a": {"enum": [["x"]]}}},
        {"properties": {"a": {"const": {"x": 1}}}},
        {"properties": {"a": 5}},
        {"properties": []},
        {"required": "a"},
        {"additionalProperties": 0},
        {"allOf": {"if": {}}},
    ],
)
def test_schema_outside_the_subset_has_no_fast_check(schema: dict[str, Any]) -> None:
    assert fast_for(schema) is None


def _overlay_sop(tmp_path: Path, overlay: dict[str, Any], name: str) -> Sop:
    (tmp_path / "sops").mkdir()
    (tmp_path / "schemas").mkdir()
    sop_path = tmp_path / "sops" / f"{name}.sop.md"
    sop_path.write_text("# x\n", encoding="utf-8")
    (tmp_path / "schemas" / f"{name}.params.schema.json").write_text(
        json.dumps(overlay), encoding="utf-8"
    )
    return seed_like(name=name, path=str(sop_path))


def test_unknown_keyword_in_overlay_uses_jsonschema(tmp_path: Path) -> None:
    sop = _overlay_sop(tmp_path, {"properties": {"amount": {"multipleOf": 100}}}, "fast-multiple")
    assert _validator(sop)[1] is None
    assert problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 2500}) == []
    assert problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 2550}) == [
        "amount: 2550 is not a multiple of 100"
    ]


class _Jsonschema:
    """Stands in for the cached jsonschema validator to show whether problems() asked it."""

    def __init__(self) -> None:
        self.asked = 0

    def iter_errors(self, instance: Any) -> list[Any]:
        self.asked += 1
        return []


def test_fast_accept_skips_jsonschema_and_rejection_asks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sop = seed_like(name="fast-spy")
    key, _ = _keyed(sop)
    _, fast, _ = _validator(sop)
    assert fast is not None
    spy = _Jsonschema()
    monkeypatch.setitem(params_module._VALIDATORS, key, (spy, fast))
    assert problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 1}) == []
    assert spy.asked == 0
    problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 1.5})
    assert spy.asked == 1


def test_without_a_fast_check_jsonschema_always_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    sop = make_sop(param("n", "integer", True, 1), name="fast-none")
    key, _ = _keyed(sop)
    assert _validator(sop)[1] is not None
    spy = _Jsonschema()
    monkeypatch.setitem(params_module._VALIDATORS, key, (spy, None))
    assert problems(sop, {"n": 1}) == []
    assert spy.asked == 1


def test_mapping_and_key_checks_come_before_the_fast_check() -> None:
    sop = seed_like(name="fast-keys")
    assert problems(sop, ["operation"]) == [  # type: ignore[arg-type]
        "parameters: expected a mapping of names to values, got list"
    ]
    assert problems(sop, {1: "x"}) == ["1: parameter names must be strings"]  # type: ignore[dict-item]


def test_a_read_only_mapping_is_checked_like_a_dict() -> None:
    sop = seed_like(name="fast-proxy")
    valid = {"operation": "charge", "customer_id": "cus_A", "amount": 1}
    assert problems(sop, MappingProxyType(valid)) == []
    bad = {**valid, "amount": 2500.0}
    assert problems(sop, MappingProxyType(bad)) == problems(sop, bad) != []
