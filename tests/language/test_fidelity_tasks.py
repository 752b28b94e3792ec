"""Agent SOP fidelity: nested keyword items and keyword sentences in prose are tasks of
their own (issue 11), with stable, unique ids."""

from __future__ import annotations

from engine.language.parser import parse
from engine.model import Level, Sop

NESTED = """# T

## Steps

### 1. Draft

**Constraints:**
- You MUST write the plan:
  - You SHOULD keep each step small
  - a note without a keyword
    - You MAY add diagrams
- You MUST save it
"""

PROSE = """# T

## Steps

### 1. Draft

Read the idea first. You MUST NOT proceed until the user confirms.
Then you SHOULD summarise it. It MAY be short. Plain prose stays prose.

**Constraints:**
- You MUST write the plan
"""


def _ids_unique(sop: Sop) -> bool:
    ids = [a.id for a in sop.all_actions()]
    return len(ids) == len(set(ids))


def test_nested_keyword_items_are_tasks_under_their_parent() -> None:
    sop = parse(NESTED)
    acts = {a.line: a for a in sop.steps[0].actions}
    assert sorted(acts) == [8, 9, 11, 12]
    assert acts[9].parent == "step1:action:L8" and acts[9].level is Level.SHOULD
    assert acts[9].text == "keep each step small" and acts[9].block == "constraints"
    # the keyword-less item in between is no task: its MAY child hangs under line 8
    assert acts[11].parent == "step1:action:L8" and acts[11].level is Level.MAY
    assert acts[8].parent is None and acts[12].parent is None
    assert acts[8].children == (
        "You SHOULD keep each step small",
        "a note without a keyword",
        "You MAY add diagrams",
    )
    assert _ids_unique(sop) and sop.diagnostics == ()


def test_keyword_sentences_in_paragraphs_are_tasks() -> None:
    sop = parse(PROSE)
    acts = [(a.line, a.level, a.text) for a in sop.steps[0].actions]
    assert acts == [
        (7, Level.MUST_NOT, "proceed until the user confirms."),
        (8, Level.SHOULD, "Then you SHOULD summarise it. It MAY be short."),
        (11, Level.MUST, "write the plan"),
    ]
    assert "Read the idea first." in sop.steps[0].text  # the prose itself is kept
    assert _ids_unique(sop)
    assert [d.code for d in sop.diagnostics] == ["SOP024"]  # line 8 mixes SHOULD and MAY


def test_paragraph_sentences_in_other_sections_are_sop_wide_tasks() -> None:
    text = "# T\n\n## Troubleshooting\n\nIf it hangs, you SHOULD restart it.\n" + PROSE[4:]
    sop = parse(text)
    trouble = next(s for s in sop.sections if s.title == "Troubleshooting")
    assert [(a.line, a.level, a.step) for a in trouble.actions] == [(5, Level.SHOULD, None)]
