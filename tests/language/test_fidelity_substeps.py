"""Sub-steps (``#### 4.1 ...``) are steps in the graph and the plan (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from engine.binding.planner import plan
from engine.binding.registry import Registry
from engine.language.graph import to_dot, to_json, to_mermaid
from engine.language.parser import parse

ROOT = Path(__file__).resolve().parents[2]

SOP = """# Build

## Overview

Build it.

## Parameters

- **check** (optional, default: true): run the checks

## Steps

### 1. Prepare

**Constraints:**
- You MUST read the spec

#### 1.1 Gather inputs

- You MUST list the inputs
- If check is true, you MUST validate them

#### 1.2 Confirm

**Constraints:**
- You MUST NOT continue without a yes

### 2. Ship

- You MUST ship it
"""


def test_substeps_are_read_and_their_lines_name_them() -> None:
    sop = parse(SOP)
    assert sop.diagnostics == ()
    step = sop.steps[0]
    assert [(s.number, s.title, s.line) for s in step.substeps] == [
        ("1.1", "Gather inputs", 18),
        ("1.2", "Confirm", 23),
    ]
    assert [(a.line, a.substep, a.step) for a in step.actions] == [
        (16, None, 1),
        (20, "1.1", 1),
        (21, "1.1", 1),
        (26, "1.2", 1),
    ]
    assert [a.id for a in step.actions] == [f"step1:action:L{n}" for n in (16, 20, 21, 26)]
    schema = json.loads((ROOT / "schemas" / "sop.schema.json").read_text("utf-8"))
    jsonschema.validate(sop.to_dict(), schema)


def test_substeps_are_nodes_of_the_graph() -> None:
    sop = parse(SOP)
    graph = to_json(sop)
    jsonschema.validate(
        graph, json.loads((ROOT / "schemas" / "graph.schema.json").read_text("utf-8"))
    )
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["s1s1"]["kind"] == "substep" and nodes["s1s1"]["label"] == "1.1 Gather inputs"
    assert [i["line"] for i in nodes["s1"]["lines"]] == [16]
    assert [i["line"] for i in nodes["s1s1"]["lines"]] == [20]
    assert [i["line"] for i in nodes["s1s2"]["lines"]] == [26]
    plain = [(e["source"], e["target"]) for e in graph["edges"] if e["condition"] is None]
    assert ("s1b1", "s1s1") in plain and ("s1s1", "s1s2") in plain and ("s1s2", "s2") in plain
    conditional = {(e["source"], e["target"], e["condition"]) for e in graph["edges"]}
    assert ("s1", "s1s1", "otherwise (check = false)") in conditional
    assert "s1s1[" in to_mermaid(sop) and "s1s1 [shape=box" in to_dot(sop)


def test_substep_lines_are_in_the_plan() -> None:
    bindings = plan(parse(SOP), {}, registry=Registry()).bindings
    assert [(b.action.line, b.action.substep) for b in bindings] == [
        (16, None),
        (20, "1.1"),
        (21, "1.1"),
        (26, "1.2"),
        (30, None),
    ]


def test_substep_numbered_under_the_wrong_step_is_flagged() -> None:
    sop = parse(SOP.replace("#### 1.2 Confirm", "#### 3.2 Confirm"))
    assert [(d.code, d.line) for d in sop.diagnostics] == [("SOP017", 23)]
