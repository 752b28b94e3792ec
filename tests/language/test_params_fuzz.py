"""Properties: validation raises only ParameterError, valid input passes, bad integers named."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine.errors import ParameterError
from engine.language.params import coerce, schema_for, unenforced, validate
from engine.model import ParamAttribute, Parameter
from tests.support.sops import make_sop, seed_like

SEED = seed_like(name="fuzz-payments")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
odd_values = (
    json_values | st.binary(max_size=8) | st.sets(st.integers(), max_size=3) | st.just(object())
)
keys = st.sampled_from(
    ["operation", "customer_id", "amount", "currency", "description", "idempotency_key"]
) | st.text(max_size=12)


@FUZZ
@given(st.dictionaries(keys, odd_values, max_size=8))
def test_validation_raises_only_parameter_error(params: dict[str, Any]) -> None:
    try:
        out = validate(SEED, params)
    except ParameterError as exc:
        assert exc.problems
        assert all(isinstance(p, str) and ": " in p for p in exc.problems)
    else:
        assert set(params) <= set(out)


valid_params = st.fixed_dictionaries(
    {
        "operation": st.sampled_from(["charge", "refund", "subscription"]),
        "customer_id": st.from_regex(r"cus_[a-zA-Z0-9]+", fullmatch=True),
        "amount": st.integers(min_value=1, max_value=99999999),
    },
    optional={
        "currency": st.text(max_size=5),
        "description": st.text(max_size=500),
        "idempotency_key": st.uuids().map(str),
    },
)


@FUZZ
@given(valid_params)
def test_valid_by_construction_passes(params: dict[str, Any]) -> None:
    out = validate(SEED, params)
    assert {k: out[k] for k in params} == params
    assert "currency" in out and "idempotency_key" in out


@FUZZ
@given(
    valid_params,
    st.integers(max_value=0) | st.integers(min_value=100_000_000),
)
def test_out_of_range_amount_is_rejected_by_name(params: dict[str, Any], amount: int) -> None:
    params = {**params, "amount": amount}
    try:
        validate(SEED, params)
    except ParameterError as exc:
        assert [p for p in exc.problems if p.startswith("amount: ")]
        assert not [p for p in exc.problems if not p.startswith("amount: ")]
    else:
        raise AssertionError(f"amount {amount} accepted")


@FUZZ
@given(st.dictionaries(keys, st.text(max_size=30), max_size=6))
def test_coerce_raises_only_parameter_error(raw: dict[str, str]) -> None:
    try:
        out = coerce(SEED, raw)
    except ParameterError as exc:
        assert all(p.split(":")[0] in raw for p in exc.problems)
    else:
        assert set(out) == set(raw)


attribute = st.tuples(
    st.sampled_from(
        ["Values", "Format", "Default", "Constraints", "Max length", "Example", "Other"]
    ),
    st.text(max_size=30),
)


@FUZZ
@given(
    st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "weird", None]),
    st.lists(attribute, max_size=4),
)
def test_any_prose_gives_a_valid_schema(type_: str | None, attrs: list[tuple[str, str]]) -> None:
    param = Parameter(
        name="p",
        type=type_,
        description="d",
        required=False,
        line=1,
        attributes=tuple(ParamAttribute(k, v, i + 2) for i, (k, v) in enumerate(attrs)),
    )
    sop = make_sop(param, name="fuzz-prose")
    Draft202012Validator.check_schema(schema_for(sop))
    for note in unenforced(sop):
        assert note.line >= 1 and note.message
    with contextlib.suppress(ParameterError):
        validate(sop, {"p": "x"})
