"""The Agent SOP format (strands-agents/agent-sop corpus, Apache-2.0, copied to fixtures).

Counts and lines were taken from the files with grep/awk, e.g.
awk '/^### [0-9]/{n=$2} /^## /{n=""} n && /^- /{c[n]++} END{for (i in c) print i, c[i]}'.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.language.parser import parse
from engine.model import Level, Sop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agent-sop"
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "sop.schema.json").read_text("utf-8")
)


@pytest.fixture(scope="module")
def pdd() -> Sop:
    path = FIXTURES / "pdd.sop.md"
    return parse(path.read_bytes(), path=str(path))


@pytest.fixture(scope="module")
def summary() -> Sop:
    path = FIXTURES / "codebase-summary.sop.md"
    return parse(path.read_bytes(), path=str(path))


def test_license_travels_with_the_fixtures() -> None:
    assert "Apache License" in (FIXTURES / "LICENSE").read_text(encoding="utf-8")


def test_pdd_steps_and_constraint_counts(pdd: Sop) -> None:
    # line 77 "MAY suggest ..., but MUST wait": a MUST, the mix noted (info)
    assert [(d.code, d.line) for d in pdd.diagnostics] == [("SOP024", 77)]
    assert pdd.name == "pdd" and pdd.title == "Prompt-Driven Development"
    assert [s.line for s in pdd.steps] == [29, 46, 60, 92, 121, 135, 169, 202]
    assert [len(s.actions) for s in pdd.steps] == [6, 5, 20, 17, 5, 16, 19, 6]
    assert all(a.block == "constraints" for s in pdd.steps for a in s.actions)
    step3 = pdd.steps[2]
    assert [a.line for a in step3.actions if a.level is Level.MUST_NOT] == [67, 68, 69, 90]
    assert [a.line for a in step3.actions if a.level is Level.MAY] == [80, 85, 86]
    assert next(a for a in step3.actions if a.line == 77).level is Level.MUST


def test_pdd_you_keyword_and_nested_items(pdd: Sop) -> None:
    first = pdd.steps[0].actions[0]
    assert first.line == 34 and first.level is Level.MUST
    assert first.text == "create the specified project directory if it doesn't already exist"
    files = pdd.steps[0].actions[1]
    assert files.line == 35
    assert files.children == (
        "{project_dir}/rough-idea.md (containing the provided rough idea)",
        "{project_dir}/idea-honing.md (for requirements clarification)",
    )
    # the fenced block nested in step 7's item does not shift the lines after it
    step7 = {a.line: a for a in pdd.steps[6].actions}
    assert 176 in step7 and 180 in step7 and 181 in step7
    assert (
        step7[181].text
        == "Each step in the plan MUST be written as a clear implementation objective"
    )


def test_pdd_parameters(pdd: Sop) -> None:
    assert [(p.name, p.required, p.default, p.line) for p in pdd.parameters] == [
        ("rough_idea", True, None, 9),
        ("project_name", False, None, 10),
        ("project_dir", False, ".agents/planning/{project_name}", 11),
    ]
    assert all(p.type is None for p in pdd.parameters)


def test_pdd_parameter_acquisition_constraints(pdd: Sop) -> None:
    params = next(s for s in pdd.sections if s.title == "Parameters")
    # line 19 is a SHOULD nested under line 15's item: a task of its own, under it
    assert [a.line for a in params.actions] == [14, 15, 19, 20, 21, 22, 23, 24, 25]
    assert next(a for a in params.actions if a.line == 19).parent == "sop:action:L15"
    mid = next(a for a in params.actions if a.line == 22)
    assert mid.level is Level.MUST and mid.text.startswith(
        "If project_name is not provided, You MUST generate"
    )
    # SOP-wide: acquiring the parameters is part of the run (plan, coverage)
    assert pdd.sop_wide[: len(params.actions)] == params.actions
    assert all(a in pdd.all_actions() and a.block == "parameters" for a in params.actions)


def test_summary_steps_and_levels(summary: Sop) -> None:
    # line 109 (a nested item) says SHOULD ... MAY ... MUST: noted
    assert [(d.code, d.line) for d in summary.diagnostics] == [("SOP024", 109)]
    assert [s.number for s in summary.steps] == [1, 2, 3, 4, 5, 6]
    # step 5 gains the nested item at 109 and the paragraph under it at 117
    assert [len(s.actions) for s in summary.steps] == [4, 10, 5, 6, 19, 5]
    step5 = summary.steps[4]
    # the first upper-case keyword sets the level: line 100 says MUST ... MUST NOT
    assert [a.line for a in step5.actions if a.level is Level.MUST_NOT] == [103, 104, 105]
    assert next(a for a in step5.actions if a.line == 100).level is Level.MUST
    assert [a.line for a in step5.actions if a.level is Level.SHOULD] == [101]


def test_summary_parameters_defaults(summary: Sop) -> None:
    defaults = {p.name: p.default for p in summary.parameters}
    assert defaults == {
        "output_dir": ".agents/summary",
        "consolidate": "true",
        "consolidate_targets": "AGENTS.md",
        "consolidate_prompt": None,
        "check_consistency": "true",
        "check_completeness": "true",
        "codebase_path": "current directory",
    }
    assert not any(p.required for p in summary.parameters)


def test_summary_item_with_code_and_paragraph(summary: Sop) -> None:
    tailor = next(a for a in summary.steps[4].actions if a.line == 108)
    assert tailor.text == "tailor the consolidated content to each target file type:"
    assert len(tailor.children) == 5
    assert tailor.children[1].startswith("On a fresh generation")
    assert [a.line for a in summary.steps[4].actions][-6:] == [121, 122, 123, 124, 125, 126]
    nested = {a.line: a for a in summary.steps[4].actions if a.parent}
    assert nested[109].parent == "step5:action:L108" and nested[109].level is Level.MUST
    assert nested[117].parent == "step5:action:L109"
    assert nested[117].text.startswith("On a fresh generation")


def test_troubleshooting_kept_with_its_constraints(summary: Sop) -> None:
    trouble = next(s for s in summary.sections if s.title == "Troubleshooting")
    assert trouble.line == 250
    assert [(a.line, a.level) for a in trouble.actions] == [
        (254, Level.SHOULD),
        (255, Level.SHOULD),
    ]


def test_examples_without_yaml_input_are_kept_raw(summary: Sop) -> None:
    titles = [e.title for e in summary.examples]
    assert titles[0] == "Example Input (Default AGENTS.md)"
    assert all(e.input == {} for e in summary.examples)
    assert summary.examples[0].raw.startswith('output_dir: ".agents/summary"')


@pytest.mark.parametrize("name", ["pdd.sop.md", "codebase-summary.sop.md"])
def test_to_dict_validates(name: str) -> None:
    path = FIXTURES / name
    jsonschema.validate(parse(path.read_bytes(), path=str(path)).to_dict(), SCHEMA)
