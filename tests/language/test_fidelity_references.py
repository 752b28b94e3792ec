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
