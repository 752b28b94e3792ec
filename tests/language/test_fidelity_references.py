"""Step references that name no step are lint errors (issue 11)."""

from __future__ import annotations

from engine.language.lint import lint
from engine.language.parser import parse

SOP = """# Refs

## Overview

Two steps.

## Steps

### 1. Gather

**Constraints:**
- You MUST ask the user, then go to step 2

#### 1.1 Clarify

- You MAY return to step 1.1 for more answers

### 2. Build

**Constraints:**
- If the build fails, you MUST return to step 5.2
- You SHOULD NOT skip Step 3

```
Step 9: an example plan's own numbering
```
"""


def test_references_to_missing_steps_are_errors() -> None:
    found = [
        (d.code, d.severity.value, d.line, d.col) for d in lint(parse(SOP)) if d.code == "SOP151"
    ]
    assert found == [("SOP151", "error", 21, 42), ("SOP151", "error", 22, 23)]
    message = next(d.message for d in lint(parse(SOP)) if d.line == 21)
    assert message.startswith("'step 5.2' names no step") and "1, 1.1, 2" in message


def test_placeholders_in_defaults_are_filled_from_other_parameters() -> None:
    from pathlib import Path

    from engine.language import params

    path = Path(__file__).resolve().parents[1] / "fixtures" / "agent-sop" / "pdd.sop.md"
    pdd = parse(path.read_bytes(), path=str(path))
    got = params.validate(pdd, {"rough_idea": "x", "project_name": "auth"})
    assert got["project_dir"] == ".agents/planning/auth"
    # a given value is the caller's, braces and all; no project_name: left for the agent
    given = params.validate(pdd, {"rough_idea": "x", "project_name": "a", "project_dir": "{x}"})
    assert given["project_dir"] == "{x}"
    assert params.validate(pdd, {"rough_idea": "x"})["project_dir"] == (
        ".agents/planning/{project_name}"
    )


def test_placeholder_cycles_and_chains() -> None:
    from engine.language import params

    text = (
        "# T\n\n## Parameters\n\n"
        '- **root** (optional, default: "/srv")\n'
        '- **app** (optional, default: "{root}/app")\n'
        '- **logs** (optional, default: "{app}/logs")\n'
        '- **a** (optional, default: "{b}")\n'
        '- **b** (optional, default: "{a}")\n'
        "\n## Steps\n\n### 1. Go\n\n- MUST go\n"
    )
    got = params.validate(parse(text), {})
    assert (got["app"], got["logs"]) == ("/srv/app", "/srv/app/logs")
    assert "{" in got["a"] and "{" in got["b"]  # a cycle is left unfilled, not an error
