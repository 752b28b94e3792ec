"""plan(): parameters, prerequisites, branch selection, binding, required lines, JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.binding.planner import plan
from engine.binding.registry import Registry
from engine.errors import BindingError, ParameterError, UsageError
from engine.language.parser import parse
from engine.language.resources import load_schema
from engine.model import Action, ActionKind, Level, Section, Sop, Step
from tests.support.sops import MINI


@pytest.fixture
def sop() -> Sop:
    return parse(MINI, path="sops/mini.sop.md")


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINI_TOKEN", "t")


def _full_registry() -> Registry:
    reg = Registry()

    @reg.action("verify customer exists")
    def verify(ctx: Any) -> None: ...

    @reg.action("set appropriate timeout ({seconds:d} seconds)")
    def timeout(ctx: Any, seconds: int) -> None: ...

    @reg.action("capture the charge")
    def capture(ctx: Any) -> None: ...

    @reg.action("require confirmation for refunds > ${threshold:d}", sop="mini")
    def confirm(ctx: Any, threshold: int) -> None: ...

    @reg.check("amount is positive")
    def positive(ctx: Any) -> bool:
        return True

    @reg.action("log full card numbers")
    def no_cards(ctx: Any) -> None: ...

    return reg


def test_bound_plan_in_execution_order_with_captures(sop: Sop) -> None:
    result = plan(sop, {"operation": "refund", "amount": 15000}, registry=_full_registry())
    assert result.ok and not result.unbound
    assert [b.action.line for b in result.bindings] == [42, 27, 28, 29, 32, 35, 38]
    by_line = {b.action.line: b for b in result.bindings}
    assert by_line[35].status == "bound" and by_line[35].match.captures == {"threshold": 100}  # type: ignore[union-attr]
    assert by_line[28].match.captures == {"seconds": 30}  # type: ignore[union-attr]
    assert by_line[32].status == "off_path"
    assert by_line[32].reason == "branch 'For Charges' not selected (operation=refund)"
    assert by_line[29].status == "unbound" and by_line[29].reason == "no handler"
    assert {b.action.line for b in result.skipped} == {29, 32}
    assert result.params == {"operation": "refund", "amount": 15000}


def test_unbound_required_lines_make_plan_not_ok(sop: Sop) -> None:
    reg = Registry()

    @reg.action("verify customer exists")
    def verify(ctx: Any) -> None: ...

    result = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)
    assert not result.ok
    unbound = {b.action.line: b for b in result.unbound}
    # MUST NOT guard, MUST action on the selected branch, MUST-level check; not the refund branch
    assert set(unbound) == {42, 32, 38}
    assert all(b.required for b in result.unbound)
    assert not any(b.required for b in result.skipped if b.status == "unbound")


def test_invalid_params_list_every_problem_before_binding(sop: Sop) -> None:
    with pytest.raises(ParameterError) as err:
        plan(sop, {"operation": "dance", "amount": 0}, registry=Registry())
    assert len(err.value.problems) == 2


def test_missing_environment_prerequisite_is_named(
    sop: Sop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINI_TOKEN")
    with pytest.raises(UsageError, match="MINI_TOKEN"):
        plan(sop, {"operation": "charge", "amount": 5}, registry=Registry())


def test_ambiguous_handlers_raise_naming_both(sop: Sop) -> None:
    reg = _full_registry()

    @reg.action("verify {who} exists")
    def one(ctx: Any, who: str) -> None: ...

    @reg.action("verify {thing} exists")
    def two(ctx: Any, thing: str) -> None: ...

    result = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)  # literal wins
    assert result.bindings[1].match.handler.name.endswith("verify")  # type: ignore[union-attr]
    reg2 = Registry()
    reg2.action("verify {who} exists")(one)
    reg2.action("verify {thing} exists")(two)
    with pytest.raises(BindingError, match=r"one .*test_plan.py:\d+.* and .*two"):
        plan(sop, {"operation": "charge", "amount": 5}, registry=reg2)


def test_step_scope_from_model_built_by_hand() -> None:
    lines = tuple(
        Action(ActionKind.ACTION, Level.MUST, "log details", "- MUST log details", n, step)
        for n, step in ((10, 1), (20, 2))
    )
    sop = Sop(
        name="hand",
        title="Hand",
        path=None,
        text="",
        content_hash="0",
        sections=(Section("Overview", 3, "Logs details."), Section("Steps", 8, "")),
        steps=(
            Step(1, "One", 9, actions=(lines[0],)),
            Step(2, "Two", 19, actions=(lines[1],)),
        ),
    )
    reg = Registry()

    @reg.action("log details", sop="hand")
    def anywhere(ctx: Any) -> None: ...

    @reg.action("log details", sop="hand", step=2)
    def step_two(ctx: Any) -> None: ...

    result = plan(sop, {}, registry=reg)
    assert [b.match.handler.func for b in result.bindings] == [anywhere, step_two]  # type: ignore[union-attr]


def test_to_dict_validates_against_schema(sop: Sop) -> None:
    result = plan(sop, {"operation": "charge", "amount": 5}, registry=_full_registry())
    data = result.to_dict()
    jsonschema.validate(data, load_schema("plan.schema.json"))
    assert data["ok"] is True and data["unbound"] == []
    first = data["bindings"][0]
    assert first["kind"] == "guard" and first["level"] == "MUST NOT"
    assert (
        first["handler"]["name"].endswith("no_cards") and first["location"] == "sops/mini.sop.md:42"
    )


def test_seed_sop_plans_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_x")
    result = plan(
        "payment-processing",
        {"operation": "charge", "customer_id": "cus_ABC123", "amount": 2500},
        registry=Registry(),
    )
    assert not result.ok and len(result.unbound) > 10
    assert result.params["currency"] == "usd"


def test_planning_again_shares_the_bindings_until_a_registration(sop: Sop) -> None:
    """Every run plans its SOP: the registry keeps a plan's bindings, for that branch
    selection, until a handler is registered (which can change any line's binding)."""
    reg = _full_registry()
    first = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)
    again = plan(sop, {"operation": "charge", "amount": 7}, registry=reg)
    assert again.bindings is first.bindings
    assert again.params["amount"] == 7  # the parameters are the caller's, every time

    @reg.action("send a postcard")
    def postcard(ctx: Any) -> None: ...

    after = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)
    by_line = {b.action.line: b for b in after.bindings}
    assert by_line[29].status == "bound" and by_line[29].match is not None
    assert by_line[29].match.handler.func is postcard


def test_another_branch_selection_is_planned_on_its_own(sop: Sop) -> None:
    reg = _full_registry()
    charge = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)
    refund = plan(sop, {"operation": "refund", "amount": 5}, registry=reg)
    assert {b.action.line: b.status for b in charge.bindings}[32] == "bound"
    by_line = {b.action.line: b for b in refund.bindings}
    assert by_line[32].status == "off_path"
    assert by_line[32].reason == "branch 'For Charges' not selected (operation=refund)"
    assert by_line[35].status == "bound"
    again = plan(sop, {"operation": "charge", "amount": 5}, registry=reg)
    assert again.bindings is charge.bindings


def test_environment_prerequisite_is_read_at_each_plan(
    sop: Sop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prerequisite's variable name is read from the SOP once; its value every time."""
    assert plan(sop, {"operation": "charge", "amount": 5}, registry=Registry())
    monkeypatch.delenv("MINI_TOKEN")
    with pytest.raises(UsageError, match="MINI_TOKEN"):
        plan(sop, {"operation": "charge", "amount": 5}, registry=Registry())
    monkeypatch.setenv("MINI_TOKEN", "again")
    assert plan(sop, {"operation": "charge", "amount": 5}, registry=Registry())
