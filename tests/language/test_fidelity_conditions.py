"""Inline conditions ("If consolidate is true, ...", "For PDD mode: ...") are branches
on a parameter: the plan takes the line only when the parameter says so (issue 11)."""

from __future__ import annotations

from pathlib import Path

from engine.binding.planner import plan
from engine.binding.registry import Registry
from engine.language.parser import parse
from engine.model import Sop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agent-sop"

MODES = """# Modes

## Overview

Plan a feature.

## Parameters

- **mode** (optional, default: "pdd"): how to plan
  - Values: pdd | tdd
- **consolidate** (optional, default: true): write one file

## Steps

### 1. Plan

**Constraints:**
- For PDD mode: You MUST write the design first
- For TDD mode: You MUST write the tests first
- If consolidate is true, you MUST merge the files
- If consolidate is not set, you MUST ask
- If the idea is vague, you MUST ask questions
- You MUST save the plan
"""


def _summary() -> Sop:
    path = FIXTURES / "codebase-summary.sop.md"
    return parse(path.read_bytes(), path=str(path))


def _off(sop: Sop, params: dict[str, object]) -> dict[int, str]:
    bound = plan(sop, params, registry=Registry()).bindings
    return {b.action.line: str(b.reason) for b in bound if b.status == "off_path"}


def test_inline_conditions_become_branches_on_parameters() -> None:
    sop = parse(MODES)
    assert [(b.label, b.param, b.value) for b in sop.steps[0].branches] == [
        ("PDD mode", "mode", "pdd"),
        ("TDD mode", "mode", "tdd"),
        ("consolidate is true", "consolidate", "true"),
    ]
    by_line = {a.line: a.branch for a in sop.steps[0].actions}
    # undecidable conditions stay obligations that always run
    assert by_line == {
        18: "PDD mode",
        19: "TDD mode",
        20: "consolidate is true",
        21: None,
        22: None,
        23: None,
    }


def test_plan_skips_lines_whose_condition_is_false() -> None:
    sop = parse(MODES)
    assert sorted(_off(sop, {})) == [19]  # defaults: mode=pdd, consolidate=true
    assert sorted(_off(sop, {"mode": "tdd", "consolidate": False})) == [18, 20]


def test_summary_consolidate_lines_follow_the_parameter() -> None:
    sop = _summary()
    branches = {a.line: a.branch for s in sop.steps for a in s.actions if a.branch}
    assert branches == {
        86: "check_consistency is true",
        87: "check_completeness is true",
        98: "consolidate is true",
        126: "consolidate is false",
        141: "consolidate is true",
    }
    assert sorted(_off(sop, {})) == [126]
    off = _off(sop, {"consolidate": False, "check_completeness": False})
    assert sorted(off) == [87, 98, 141]
    assert "(consolidate=False)" in off[98]
