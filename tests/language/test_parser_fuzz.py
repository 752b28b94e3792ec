"""Property tests: parse() never raises and every line it reports exists in the input."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.language.parser import parse
from engine.model import Sop

ROOT = Path(__file__).resolve().parents[2]
SEED_LINES = (ROOT / "sops" / "payment-processing.sop.md").read_text(encoding="utf-8").split("\n")
VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((ROOT / "schemas" / "sop.schema.json").read_text(encoding="utf-8"))
)
FAST = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

FRAGMENTS = [
    "# Title",
    "## Steps",
    "## Parameters",
    "## Error Recovery",
    "## Examples",
    "## Security Considerations",
    "### 1. Step",
    "### 2. Step",
    "### Required",
    "### Example 1: x",
    "**Actions**:",
    "**Validation**:",
    "**Error Handling**:",
    "**For Charges**:",
    "**Purpose**: why",
    "- MUST do it",
    "- You SHOULD NOT do it",
    "- must lower",
    '- If bad: Return error with "Bad"',
    "  - nested",
    "    - deeper",
    "- **operation** (string): op",
    "  - Values: `charge` | `refund`",
    '- **x** (optional, default: "y"): z',
    "| Error Type | Recovery Procedure |",
    "|---|---|",
    "| Rate limited | Retry up to 3 times with backoff |",
    "```",
    "```python",
    "Input:",
    "  a: 1",
    "Expected Output:",
    "---",
    "> quote",
    "[ref]: http://x",
    "",
    "",
]


def line_count(data: str | bytes) -> int:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return max(1, len(text.split("\n")))


def assert_lines_in_range(sop: Sop, data: str | bytes) -> None:
    n = line_count(data)
    assert not [d for d in sop.diagnostics if d.code == "SOP099"], sop.diagnostics
    for diag in sop.diagnostics:
        assert 1 <= diag.line <= n, diag
    for action in sop.all_actions():
        assert 1 <= action.line <= n, action
    for step in sop.steps:
        assert 1 <= step.line <= n
        for rule in step.error_rules:
            assert 1 <= rule.line <= n
        for branch in step.branches:
            assert 1 <= branch.line <= n
    for param in sop.parameters:
        assert 1 <= param.line <= n
        assert all(1 <= a.line <= n for a in param.attributes)
    for section in sop.sections:
        assert 1 <= section.line <= n
        assert all(1 <= a.line <= n for a in section.actions)
    for row in sop.recovery:
        assert 1 <= row.line <= n
    for example in sop.examples:
        assert 1 <= example.line <= n
        assert all(1 <= v <= n for v in example.key_lines.values())


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    assert_lines_in_range(parse(data), data)


@FAST
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=60))
def test_markdownish_text(parts: list[str]) -> None:
    text = "\n".join(parts)
    sop = parse(text, path="fuzz.sop.md")
    assert_lines_in_range(sop, text)
    VALIDATOR.validate(sop.to_dict())


@settings(FAST, max_examples=50)
@given(
    st.lists(
        st.tuples(st.integers(0, len(SEED_LINES)), st.integers(0, 12), st.booleans()), max_size=6
    )
)
def test_mangled_seed(edits: list[tuple[int, int, bool]]) -> None:
    lines = list(SEED_LINES)
    for start, size, duplicate in edits:
        chunk = lines[start : start + size]
        if duplicate:
            lines[start:start] = chunk
        else:
            del lines[start : start + size]
    text = "\n".join(lines)
    sop = parse(text)
    assert_lines_in_range(sop, text)
    VALIDATOR.validate(sop.to_dict())
    # every action keeps the line it was written on
    source = text.split("\n")
    for action in sop.all_actions():
        assert action.source.split(" ")[0] in source[action.line - 1]
