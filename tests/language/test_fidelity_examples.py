"""Prose examples ("Example Input" / "Example Output" without YAML) are documentation:
parsed as such and reported by ``sop test`` as documentation, not as failures (issue 11)."""

from __future__ import annotations

from pathlib import Path

from engine.language.parser import parse
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "tests" / "fixtures" / "agent-sop" / "codebase-summary.sop.md"

PROSE = """# Notes

## Overview

Write notes.

## Parameters

- **topic** (optional, default: "x"): what to write about

## Steps

### 1. Write

**Constraints:**
- You MUST write the notes

## Examples

### Example Input

```
topic: "release"
```

### Example Output

The agent writes notes.md with one section per change.
"""


def test_agent_sop_prose_examples_are_documentation() -> None:
    sop = parse(SUMMARY.read_bytes(), path=str(SUMMARY))
    assert sop.examples and all(e.documentation for e in sop.examples)
    assert [e.documentation for e in parse(PROSE).examples] == [True, True]


def test_sop_test_reports_prose_examples_as_documentation(tmp_path: Path) -> None:
    (tmp_path / "notes.sop.md").write_text(PROSE, encoding="utf-8")
    done = sop_cli("test", "notes", cwd=tmp_path, env={"SOP_PATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines[:2]] == ["DOC", "DOC"]
    assert "notes example 1: Example Input (line 20): documentation" in lines[0]
    assert lines[-1] == "0 passed, 0 failed, 2 documentation"
