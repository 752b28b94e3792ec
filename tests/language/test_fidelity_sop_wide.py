"""Parameter-acquisition constraints and Troubleshooting are SOP-wide sections: their
lines appear in the plan and in coverage (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from engine.binding.coverage import sop_coverage
from engine.binding.planner import plan
from engine.binding.registry import Registry
from engine.language.parser import parse
from engine.model import Level

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "tests" / "fixtures" / "agent-sop" / "codebase-summary.sop.md"

SOP = """# Notes

## Overview

Write notes.

## Parameters

- **topic** (optional, default: "x"): what to write about

**Constraints for parameter acquisition:**
- You MUST ask for the topic upfront
- You SHOULD confirm it

## Steps

### 1. Write

- You MAY write the notes

## Troubleshooting

If the file is locked, you SHOULD wait and retry.

- You MUST NOT delete a locked file
"""


def test_sop_wide_lines_are_in_plan_and_coverage() -> None:
    sop = parse(SOP)
    assert [(a.id, a.block, a.level) for a in sop.sop_wide] == [
        ("sop:action:L12", "parameters", Level.MUST),
        ("sop:action:L13", "parameters", Level.SHOULD),
        ("sop:action:L23", "troubleshooting", Level.SHOULD),
        ("sop:action:L25", "troubleshooting", Level.MUST_NOT),
    ]
    planned = [b.action.id for b in plan(sop, {}, registry=Registry()).bindings]
    assert planned == [a.id for a in sop.sop_wide] + ["step1:action:L19"]
    covered = [line.action.id for line in sop_coverage(sop, Registry()).lines]
    assert covered == planned
    schema = json.loads((ROOT / "schemas" / "sop.schema.json").read_text("utf-8"))
    jsonschema.validate(sop.to_dict(), schema)


def test_summary_troubleshooting_is_sop_wide() -> None:
    sop = parse(SUMMARY.read_bytes(), path=str(SUMMARY))
    lines = {a.line for a in sop.all_actions() if a.step is None}
    assert {254, 255} <= lines and {18, 19, 23} <= lines
