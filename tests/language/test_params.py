"""Parameters -> JSON Schema, coercion of CLI strings, validation with all errors at once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.errors import ParameterError
from engine.language.params import coerce, schema_for, unenforced, validate
from engine.language.parser import parse
from engine.model import Parameter, Severity
from tests.support.sops import make_sop, param, seed_like

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"


def test_seed_like_schema_has_every_keyword() -> None:
    schema = schema_for(seed_like())
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert props["operation"]["enum"] == ["charge", "refund", "subscription"]
    assert props["customer_id"]["pattern"] == "^cus_[a-zA-Z0-9]+$"
    assert props["amount"]["type"] == "integer"
    assert props["amount"]["exclusiveMinimum"] == 0
    assert props["amount"]["maximum"] == 99999999
    assert props["currency"]["default"] == "usd"
    assert "default" not in props["description"]
    assert props["description"]["maxLength"] == 500
    assert props["idempotency_key"]["x-generated"] == "uuid"
    assert schema["required"] == ["operation", "customer_id"]
    assert schema["additionalProperties"] is False
    assert schema["allOf"] == [
        {
            "if": {"properties": {"operation": {"const": "charge"}}, "required": ["operation"]},
            "then": {"required": ["amount"]},
        }
    ]
    assert unenforced(seed_like()) == []


def test_validate_applies_defaults_and_generates_uuid() -> None:
    out = validate(
        seed_like(), {"operation": "charge", "customer_id": "cus_ABC123", "amount": 2500}
    )
    assert out["currency"] == "usd"
    assert uuid.UUID(out["idempotency_key"]).version == 4
    assert "description" not in out
    again = validate(seed_like(), {"operation": "charge", "customer_id": "cus_A", "amount": 1})
    assert again["idempotency_key"] != out["idempotency_key"]
    kept = validate(
        seed_like(), {"operation": "refund", "customer_id": "cus_A", "idempotency_key": "k1"}
    )
    assert kept["idempotency_key"] == "k1"


def test_validate_reports_all_errors_at_once_with_names() -> None:
    with pytest.raises(ParameterError) as info:
        validate(
            seed_like(),
            {
                "operation": "charge",
                "customer_id": "bob",
                "amount": 0,
                "description": "x" * 501,
                "payment_intent": "pi_1",
            },
        )
    problems = info.value.problems
    assert "amount: 0 is not > 0 (must be positive)" in problems
    assert "customer_id: 'bob' does not match ^cus_[a-zA-Z0-9]+$" in problems
    assert any(p.startswith("description: 501 characters is longer than 500") for p in problems)
    assert any(p.startswith("payment_intent: unknown parameter") for p in problems)
    assert len(problems) == 4


def test_conditional_requirement_only_for_charge() -> None:
    with pytest.raises(ParameterError) as info:
        validate(seed_like(), {"operation": "charge", "customer_id": "cus_A"})
    assert info.value.problems == [
        "amount: required when operation is 'charge' (Required for charge operations)"
    ]
    validate(seed_like(), {"operation": "subscription", "customer_id": "cus_A"})


def test_conditional_requirement_names_a_plural_value() -> None:
    """'Required for cases' names the value case (one singular rule, the parser's too)."""
    sop = make_sop(
        param("kind", "string", True, 1, ("Values", "`case` | `lead`")),
        param("owner", "string", False, 3, ("Default", "Required for cases")),
    )
    assert unenforced(sop) == []
    with pytest.raises(ParameterError) as info:
        validate(sop, {"kind": "case"})
    assert info.value.problems == ["owner: required when kind is 'case' (Required for cases)"]
    validate(sop, {"kind": "lead"})


def test_missing_required_and_bad_enum() -> None:
    with pytest.raises(ParameterError) as info:
        validate(seed_like(), {"operation": "payout"})
    assert info.value.problems == [
        "customer_id: required parameter is missing",
        "operation: 'payout' is not one of 'charge', 'refund', 'subscription'",
    ]


@pytest.mark.parametrize("amount", [2500.0, 25.5, True, "2500", None])
def test_amount_must_be_a_real_integer(amount: object) -> None:
    with pytest.raises(ParameterError) as info:
        validate(seed_like(), {"operation": "charge", "customer_id": "cus_A", "amount": amount})
    assert info.value.problems[0].startswith("amount: ")
    assert "is not of type integer" in info.value.problems[0]


def test_maximum_names_its_phrase() -> None:
    with pytest.raises(ParameterError) as info:
        validate(
            seed_like(), {"operation": "charge", "customer_id": "cus_A", "amount": 100_000_000}
        )
    assert info.value.problems == ["amount: 100000000 is not <= 99999999 (max 99999999)"]


def test_not_a_mapping_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        validate(seed_like(), ["operation"])  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        validate(seed_like(), {1: "x"})  # type: ignore[dict-item]


def test_coerce_converts_declared_types() -> None:
    sop = make_sop(
        param("count", "integer", True, 1),
        param("ratio", "number", False, 3),
        param("dry_run", "boolean", False, 5),
        param("tags", "array", False, 7),
        param("meta", "object", False, 9),
        param("note", "string", False, 11),
    )
    out = coerce(
        sop,
        {
            "count": "2500",
            "ratio": "0.5",
            "dry_run": "yes",
            "tags": "a, b",
            "meta": '{"k": 1}',
            "note": "007",
            "other": "x",
        },
    )
    assert out == {
        "count": 2500,
        "ratio": 0.5,
        "dry_run": True,
        "tags": ["a", "b"],
        "meta": {"k": 1},
        "note": "007",
        "other": "x",
    }


def test_coerce_lists_every_bad_value() -> None:
    sop = make_sop(param("count", "integer", True, 1), param("flag", "boolean", False, 3))
    with pytest.raises(ParameterError) as info:
        coerce(sop, {"count": "25.00", "flag": "maybe"})
    assert info.value.problems[0].startswith("count: '25.00' is not an integer")
    assert info.value.problems[1].startswith("flag: 'maybe' is not a boolean")


def test_unenforced_phrases_are_reported_with_lines() -> None:
    sop = make_sop(
        param(
            "size", "integer", False, 10, ("Constraints", "Must be even, max 10"), ("Units", "cm")
        ),
        param("code", "string", False, 20, ("Format", "three letters")),
        param("blob", "blob", False, 30),
        param("mode", "string", False, 40, ("Default", "Required for turbo operations")),
        param("re", "string", False, 50, ("Format", "`[a-`")),
    )
    notes = {(d.line, d.code) for d in unenforced(sop)}
    assert (11, "SOP121") in notes  # "Must be even" (max 10 is understood)
    assert (12, "SOP121") in notes  # Units: cm
    assert (21, "SOP121") in notes  # Format without a regex
    assert (30, "SOP121") in notes  # unknown type
    assert (41, "SOP121") in notes  # condition names no enum value
    assert (51, "SOP120") in notes  # invalid regex: an error
    assert schema_for(sop)["properties"]["size"]["maximum"] == 10
    bad_regex = [d for d in unenforced(sop) if d.code == "SOP120"]
    assert bad_regex[0].severity is Severity.ERROR
    assert all("not enforced" in d.message for d in unenforced(sop) if d.code == "SOP121")


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Must be positive", {"exclusiveMinimum": 0}),
        ("non-negative", {"minimum": 0}),
        ("between 1 and 10", {"minimum": 1, "maximum": 10}),
        ("at least 5", {"minimum": 5}),
        ("max 1,000", {"maximum": 1000}),
        ("less than 7", {"exclusiveMaximum": 7}),
    ],
)
def test_constraint_phrases(phrase: str, expected: dict[str, int]) -> None:
    sop = make_sop(param("n", "integer", False, 1, ("Constraints", phrase)))
    prop = schema_for(sop)["properties"]["n"]
    assert {k: prop[k] for k in expected} == expected
    assert unenforced(sop) == []


def test_default_not_in_values_is_an_error() -> None:
    sop = make_sop(param("mode", "string", False, 1, ("Values", "`a` | `b`"), ("Default", "`c`")))
    notes = unenforced(sop)
    assert [(d.code, d.severity) for d in notes] == [("SOP124", Severity.ERROR)]


@pytest.mark.parametrize(
    ("details", "broken"),
    [
        ((("Format", "`[a-z]{3}`"), ("Default", "US-DOLLARS")), "does not match"),
        ((("Constraints", "between 1 and 5"), ("Default", "9")), "greater than the maximum"),
        ((("Default", "toolongvalue"), ("Max length", "4")), "is too long"),
    ],
)
def test_a_default_that_breaks_its_own_rules_is_an_error_and_not_applied(
    details: tuple[tuple[str, str], ...], broken: str
) -> None:
    kind = "integer" if any(k == "Constraints" for k, _ in details) else "string"
    sop = make_sop(param("x", kind, False, 1, *details))
    notes = unenforced(sop)
    assert [(d.code, d.severity) for d in notes] == [("SOP124", Severity.ERROR)]
    assert broken in notes[0].message and "'x'" in notes[0].message
    assert "default" not in schema_for(sop)["properties"]["x"]


def test_overlay_adds_properties(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "schemas").mkdir()
    sop_path = tmp_path / "sops" / "payments.sop.md"
    sop_path.write_text("# x\n", encoding="utf-8")
    overlay = {
        "properties": {"payment_intent": {"type": "string", "pattern": "^pi_[A-Za-z0-9]+$"}},
        "allOf": [
            {
                "if": {"properties": {"operation": {"const": "refund"}}, "required": ["operation"]},
                "then": {"required": ["payment_intent"]},
            }
        ],
    }
    (tmp_path / "schemas" / "payments.params.schema.json").write_text(
        json.dumps(overlay), encoding="utf-8"
    )
    sop = seed_like(name="payments", path=str(sop_path))
    schema = schema_for(sop)
    assert "payment_intent" in schema["properties"]
    assert len(schema["allOf"]) == 2
    validate(sop, {"operation": "refund", "customer_id": "cus_A", "payment_intent": "pi_1"})
    with pytest.raises(ParameterError) as info:
        validate(sop, {"operation": "refund", "customer_id": "cus_A"})
    assert info.value.problems == [
        "payment_intent: required when operation is 'refund' (payments.params.schema.json)"
    ]


def test_schema_for_returns_a_copy() -> None:
    sop = seed_like()
    schema_for(sop)["properties"].clear()
    assert "amount" in schema_for(sop)["properties"]


def test_seed_file_schema() -> None:
    sop = parse(SEED.read_text(encoding="utf-8"), path=str(SEED))
    schema = schema_for(sop)
    assert schema["properties"]["amount"]["maximum"] == 99999999
    assert schema["allOf"][0]["then"] == {"required": ["amount"]}
    assert schema["properties"]["customer_id"]["pattern"] == "^cus_[a-zA-Z0-9]+$"
    assert unenforced(sop) == []


def test_agent_sop_inline_defaults_infer_types() -> None:
    def untyped(name: str, default: str | None) -> Parameter:
        return Parameter(name, None, "d", False, 9, (), default)

    sop = make_sop(
        untyped("flag", "true"),
        untyped("count", "3"),
        untyped("out_dir", ".agents/summary"),
        untyped("path", "current directory"),
        untyped("free", None),
        name="agent",
    )
    props = schema_for(sop)["properties"]
    assert props["flag"] == {"type": "boolean", "default": True, "description": "d"}
    assert props["count"]["type"] == "integer" and props["count"]["default"] == 3
    assert props["out_dir"]["default"] == ".agents/summary"
    assert "default" not in props["path"]
    assert props["free"]["type"] == "string"
    assert [(d.code, d.line) for d in unenforced(sop)] == [("SOP121", 9)]
    assert "not enforced" in unenforced(sop)[0].message
    assert coerce(sop, {"flag": "false"}) == {"flag": False}
    assert validate(sop, {})["flag"] is True


def test_a_parameter_error_never_echoes_a_card_number_or_breaks_the_line() -> None:
    """Errors quote what the caller sent: redacted, control characters escaped."""
    with pytest.raises(ParameterError) as caught:
        validate(
            seed_like(),
            {
                "operation": "charge",
                "customer_id": "cus_A",
                "amount": "4242424242424242x",
                "bad\nname": "4111 1111 1111 1111",
            },
        )
    message = str(caught.value)
    assert "4242424242424242" not in message and "4111 1111 1111 1111" not in message
    assert "\n" not in message and "bad\\x0aname" in message
    assert all("\n" not in p for p in caught.value.problems)
