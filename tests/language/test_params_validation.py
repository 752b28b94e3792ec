"""Parameter validation (engine.language.params.problems): jsonschema decides, the
messages name the parameter and, where the SOP gave one, the phrase behind the rule."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from engine.language.catalog import load
from engine.language.params import problems
from engine.model import Sop
from tests.support.sops import seed_like

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"


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
def test_seed_valid_params_have_no_problems(params: dict[str, Any]) -> None:
    assert problems(load(str(SEED)), params) == []


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
    found = problems(load(str(SEED)), params)
    assert len(found) == 1 and found[0].startswith(problem), found


def _overlay_sop(tmp_path: Path, overlay: dict[str, Any], name: str) -> Sop:
    (tmp_path / "sops").mkdir()
    (tmp_path / "schemas").mkdir()
    sop_path = tmp_path / "sops" / f"{name}.sop.md"
    sop_path.write_text("# x\n", encoding="utf-8")
    (tmp_path / "schemas" / f"{name}.params.schema.json").write_text(
        json.dumps(overlay), encoding="utf-8"
    )
    return seed_like(name=name, path=str(sop_path))


def test_any_keyword_an_overlay_adds_is_enforced(tmp_path: Path) -> None:
    sop = _overlay_sop(tmp_path, {"properties": {"amount": {"multipleOf": 100}}}, "multiple")
    assert problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 2500}) == []
    assert problems(sop, {"operation": "charge", "customer_id": "cus_A", "amount": 2550}) == [
        "amount: 2550 is not a multiple of 100"
    ]


def test_params_must_be_a_mapping_with_string_names() -> None:
    sop = seed_like(name="keys")
    assert problems(sop, ["operation"]) == [  # type: ignore[arg-type]
        "parameters: expected a mapping of names to values, got list"
    ]
    assert problems(sop, {1: "x"}) == ["1: parameter names must be strings"]  # type: ignore[dict-item]


def test_a_read_only_mapping_is_checked_like_a_dict() -> None:
    sop = seed_like(name="proxy")
    valid = {"operation": "charge", "customer_id": "cus_A", "amount": 1}
    assert problems(sop, MappingProxyType(valid)) == []
    bad = {**valid, "amount": 2500.0}
    assert problems(sop, MappingProxyType(bad)) == problems(sop, bad) != []
