"""lint(): each check on a hand-built model, then the seed and bad files through lint_paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.language.lint import lint, lint_file, lint_paths
from engine.language.parser import parse
from engine.model import (
    Action,
    ActionKind,
    Branch,
    Diagnostic,
    Example,
    Level,
    Link,
    ParamAttribute,
    Parameter,
    RecoveryRule,
    Section,
    Severity,
    Sop,
    Step,
)
from tests.support.sops import FRAGMENTS

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"


def _sections(*titles: str) -> tuple[Section, ...]:
    return tuple(Section(t, i * 10 + 1, "") for i, t in enumerate(titles))


def _act(
    text: str, line: int, step: int | None = 1, level: Level = Level.MUST, block: str = "actions"
) -> Action:
    kind = ActionKind.GUARD if step is None else ActionKind.ACTION
    return Action(kind, level, text, f"{level.value} {text}", line, step, level.value, block)


OPERATION = Parameter(
    "operation",
    "string",
    "op",
    True,
    5,
    (ParamAttribute("Values", "`charge` | `refund` | `subscription`", 6),),
)
AMOUNT = Parameter(
    "amount", "integer", "cents", False, 7, (ParamAttribute("Constraints", "Must be positive", 8),)
)


def make(**fields: object) -> Sop:
    base: dict[str, object] = {
        "name": "demo",
        "title": "Demo",
        "path": None,
        "text": repr(sorted(fields.items(), key=lambda kv: kv[0])),
        "sections": _sections("Overview", "Parameters", "Steps"),
        "parameters": (OPERATION, AMOUNT),
        "steps": (Step(1, "Do", 20, actions=(_act("do it", 22),)),),
    }
    base.update(fields)
    base["content_hash"] = hashlib.sha256(str(base["text"]).encode()).hexdigest()
    return Sop(**base)  # type: ignore[arg-type]


def codes(found: list[Diagnostic]) -> list[tuple[str, int]]:
    return [(d.code, d.line) for d in found]


def test_clean_model_has_no_findings() -> None:
    assert lint(make()) == []


def test_missing_sections() -> None:
    found = lint(make(sections=_sections("Parameters")))
    assert ("SOP101", 1) in codes(found)
    assert sum(d.code == "SOP101" for d in found) == 2
    assert all(d.severity is Severity.ERROR and "add it" in d.message for d in found)


def test_examples_with_input_need_parameters() -> None:
    example = Example(
        "E", 40, input={"operation": "charge"}, input_line=41, key_lines={"operation": 42}
    )
    found = lint(make(sections=_sections("Overview", "Steps", "Examples"), examples=(example,)))
    assert ("SOP102", 40) in codes(found)


def test_step_numbering_and_empty_step() -> None:
    steps = (Step(1, "A", 10, actions=(_act("a", 11),)), Step(3, "B", 20))
    found = lint(make(steps=steps))
    assert ("SOP103", 20) in codes(found)
    assert ("SOP104", 20) in codes(found)
    assert "### 2. B" in next(d.message for d in found if d.code == "SOP103")


def test_negative_without_reason_warns_in_agent_sop_format_only() -> None:
    agent = make(
        steps=(
            Step(
                1,
                "A",
                10,
                actions=(
                    _act("overwrite files", 11, level=Level.MUST_NOT, block="constraints"),
                    _act(
                        "delete data because it is lost forever",
                        12,
                        level=Level.MUST_NOT,
                        block="constraints",
                    ),
                ),
            ),
        )
    )
    found = lint(agent)
    assert codes(found) == [("SOP110", 11)]
    assert found[0].severity is Severity.WARNING
    assert "because" in found[0].message
    seed_style = make(
        steps=(Step(1, "A", 10, actions=(_act("log card numbers", 11, level=Level.MUST_NOT),)),)
    )
    found = lint(seed_style)
    assert codes(found) == [("SOP110", 11)]
    assert found[0].severity is Severity.INFO


def test_examples_undeclared_and_invalid_inputs() -> None:
    example = Example(
        "Refund",
        50,
        input={"operation": "refund", "amount": 0, "payment_intent": "pi_XYZ789"},
        input_line=51,
        key_lines={"operation": 52, "amount": 53, "payment_intent": 54},
    )
    found = lint(make(examples=(example,)))
    assert ("SOP130", 54) in codes(found)
    assert ("SOP131", 53) in codes(found)
    undeclared = next(d for d in found if d.code == "SOP130")
    assert "payment_intent" in undeclared.message and "declare it" in undeclared.message


def test_symbols_are_fine_values() -> None:
    customer = Parameter(
        "customer_id", "string", "c", True, 9, (ParamAttribute("Format", "`cus_[a-zA-Z0-9]+`", 10),)
    )
    example = Example(
        "E", 50, input={"operation": "charge", "customer_id": "cus_ABC123", "amount": 2500}
    )
    assert lint(make(parameters=(OPERATION, AMOUNT, customer), examples=(example,))) == []


def test_enum_value_without_branch() -> None:
    step = Step(
        3,
        "Execute",
        80,
        actions=(_act("call the API", 81),),
        branches=(
            Branch("Charges", 90, 3, "operation", "charge"),
            Branch("Refunds", 100, 3, "operation", "refund"),
            Branch("Payouts", 110, 3),
        ),
    )
    steps = (
        Step(1, "A", 10, actions=(_act("a", 11),)),
        Step(2, "B", 20, actions=(_act("b", 21),)),
        step,
    )
    found = lint(make(steps=steps))
    assert ("SOP140", 80) in codes(found)
    assert "'**For Subscriptions**:'" in next(d.message for d in found if d.code == "SOP140")
    assert ("SOP141", 110) in codes(found)


def test_related_links_resolve_relative_to_the_sop(tmp_path: Path) -> None:
    (tmp_path / "other.sop.md").write_text("# o\n", encoding="utf-8")
    links = (
        Link("Other", "other.sop.md", 60),
        Link("Missing", "missing.sop.md", 61),
        Link("Web", "https://example.com/x", 62),
        Link("Anchor", "#steps", 63),
    )
    found = lint(make(path=str(tmp_path / "demo.sop.md"), related=links))
    assert codes(found) == [("SOP150", 61)]


def test_recovery_phrases_and_parser_diagnostics_are_included() -> None:
    rule = RecoveryRule(
        "Customer not found", "Verify customer ID", 152, unknown_phrases=("verify customer id",)
    )
    parser_diag = Diagnostic("SOP020", Severity.WARNING, "from the parser", 3)
    found = lint(make(recovery=(rule,), diagnostics=(parser_diag,), path="x.sop.md"))
    assert codes(found) == [("SOP020", 3), ("SOP160", 152)]
    assert all(d.path == "x.sop.md" for d in found)


def test_unenforced_parameter_phrases_are_included() -> None:
    odd = Parameter("mode", "string", "m", False, 12, (ParamAttribute("Units", "cm", 13),))
    found = lint(make(parameters=(OPERATION, AMOUNT, odd)))
    assert codes(found) == [("SOP121", 13)]


# --------------------------------------------------------------------------- the seed, real files


def test_seed_findings_without_overlay(tmp_path: Path) -> None:
    """A copy under another name: no overlay, no related files beside it."""
    copy = tmp_path / "seed-copy.sop.md"
    shutil.copy(SEED, copy)
    found = lint_paths([copy])
    by_code = {(d.code, d.line) for d in found}
    assert ("SOP130", 192) in by_code  # Example 2's payment_intent is undeclared
    assert ("SOP135", 193) in by_code  # and refunds more than Example 1 charged
    assert ("SOP140", 80) in by_code  # subscription has no branch in step 3
    assert ("SOP150", 205) in by_code  # related SOP files do not exist here
    assert ("SOP150", 206) in by_code
    assert ("SOP160", 152) in by_code  # "Verify customer ID" is not recovery vocabulary
    assert ("SOP110", 161) in by_code  # MUST NOT without a reason: info in this format
    assert ("SOP110", 129) not in by_code  # "(only network/timeout errors)" is a reason
    assert all(d.path == str(copy) for d in found)
    assert not [d for d in found if d.code in ("SOP101", "SOP103", "SOP121", "SOP131", "SOP199")]
    assert [d.code for d in found if d.severity is Severity.ERROR] == ["SOP130"]


def test_seed_in_the_project_uses_its_overlay() -> None:
    found = lint_paths([SEED])
    assert not [d for d in found if d.code in ("SOP130", "SOP131", "SOP150")]
    by_code = {(d.code, d.line) for d in found}
    assert ("SOP140", 80) in by_code
    # the overlay makes payment_intent valid at run time, yet the SOP text never declares it
    assert ("SOP132", 192) in by_code
    # Example 2 refunds 15000 of the payment Example 1 charged 2500
    assert ("SOP135", 193) in by_code


def test_directory_recursion_and_missing_path(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(SEED, nested / "payment-processing.sop.md")
    (tmp_path / "README.md").write_text("# not an SOP\n", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    shutil.copy(SEED, tmp_path / ".hidden" / "x.sop.md")
    found = lint_paths([tmp_path, tmp_path / "nope.sop.md"])
    paths = {d.path for d in found}
    assert paths == {str(nested / "payment-processing.sop.md"), str(tmp_path / "nope.sop.md")}


DEEP_MARKERS = (
    b"# D\n\n## Overview\n\nx\n\n## Steps\n\n### 1. A\n\n**Actions**:\n"
    + b"- " * 1990  # the line stays within the parser's MAX_LINE (4,000)
    + b"MUST x\n"
)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "SOP004"),
    "blank": (b"\n  \n", "SOP004"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "SOP001"),
    "latin1": ("# Caf\u00e9\n\n## Overview\n".encode("latin-1"), "SOP002"),
    "huge": (b"# Big\n\n" + b"- MUST do a thing\n" * 600_000, "SOP193"),
    "heading-only": (b"# Just a title\n", "SOP101"),
    "nested-markers": (DEEP_MARKERS, "SOP105"),
    "nested-quotes": (
        b"# Q\n\n## Overview\n\nx\n\n## Steps\n\n" + b">" * 2000 + b" - MUST x\n",
        "SOP105",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_become_diagnostics(tmp_path: Path, kind: str) -> None:
    data, code = BAD_FILES[kind]
    path = tmp_path / f"{kind}.sop.md"
    path.write_bytes(data)
    found = lint_paths([path])
    assert code in {d.code for d in found}
    assert any(d.severity is Severity.ERROR for d in found)


def test_deeply_indented_list_is_a_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "deep.sop.md"
    lines = [
        "# Deep",
        "",
        "## Overview",
        "",
        "x",
        "",
        "## Steps",
        "",
        "### 1. A",
        "",
        "**Actions**:",
    ]
    lines += ["  " * i + "- MUST go deeper" for i in range(40)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = lint_paths([path])
    assert ("SOP105", 28) in codes(found)
    assert all(d.path == str(path) for d in found)


def test_file_level_parser_errors_are_not_buried_in_noise(tmp_path: Path) -> None:
    path = tmp_path / "bin.sop.md"
    path.write_bytes(b"\x00\x01")
    assert [d.code for d in lint_paths([path])] == ["SOP001"]


def test_a_directory_named_as_a_file_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "dir.sop.md").mkdir()
    assert [d.code for d in lint_file(tmp_path / "dir.sop.md")] == ["SOP190"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.sop.md"
    path.write_text("# x\n", encoding="utf-8")
    path.chmod(0)
    found = lint_paths([path])
    assert [d.code for d in found] == ["SOP190"]


def test_parallel_and_serial_agree(tmp_path: Path) -> None:
    for i in range(6):
        text = SEED.read_text(encoding="utf-8").replace("cus_", f"c{i}_")
        (tmp_path / f"p{i}.sop.md").write_text(text, encoding="utf-8")
    (tmp_path / "empty.sop.md").write_bytes(b"")
    serial = lint_paths([tmp_path], jobs=1)
    assert lint_paths([tmp_path], jobs=2) == serial
    assert len({d.path for d in serial}) == 7


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=12))
def test_lint_never_raises(parts: list[str]) -> None:
    found = lint(parse("".join(parts), path="fuzz.sop.md"))
    for d in found:
        assert d.line >= 1 and d.code.startswith("SOP") and d.message


def test_a_sop_keeps_what_is_derived_from_it() -> None:
    """Sop.derived: computed once per key and kept with that Sop (lint errors, parameter
    validator), never shared with an equal Sop, never part of its equality or its JSON."""
    text = "# T\n\n## Overview\n\nx\n\n## Steps\n\n### 1. Do\n\n- MUST act\n"
    sop, twin = parse(text), parse(text)
    calls: list[str] = []

    def compute(tag: str) -> str:
        calls.append(tag)
        return tag

    assert sop.derived("k", lambda: compute("a")) == "a"
    assert sop.derived("k", lambda: compute("b")) == "a"
    assert twin.derived("k", lambda: compute("c")) == "c"
    assert calls == ["a", "c"]
    assert sop == twin and sop.to_dict() == twin.to_dict()
