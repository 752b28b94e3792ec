"""A mixed-performer SOP and its handlers, shared by the guided-run tests."""

from __future__ import annotations

from pathlib import Path

from engine.binding.registry import Registry
from engine.execution.context import RunContext

MIXED = """\
# Release Runbook

**Version**: 1.0.0
**Performer**: agent

## Overview

Cut a release: code checks, the agent writes.

## Parameters
- **mode** (string): How to release
  - Values: `full` | `quick`

## Steps

### 1. Prepare

Get the tree ready for the release.

**Actions**:
- MUST record the start
- MUST write the changelog
- SHOULD update the docs
- MUST NOT push to main directly

**Validation**:
- Changelog mentions every merged change

**Error Handling**:
- If changelog missing: Return error with "Changelog is required" message

### 2. Tag
**Performer**: person

**Actions**:
- MUST tag the release
- MUST record the tag

**For Full**:
- MUST announce the release

### 3. Finish

**Actions**:
- MUST record the end
"""

CODE_ONLY = """\
# Code Only

**Version**: 1.0.0

## Overview

Two lines; nobody wrote a handler for the second.

## Steps

### 1. One

**Actions**:
- MUST record the start
- MUST do something nobody wrote
"""


def write(tmp: Path, text: str = MIXED, name: str = "release-runbook") -> Path:
    path = tmp / f"{name}.sop.md"
    path.write_text(text, encoding="utf-8")
    return path


def registry(effects: Path) -> Registry:
    """Handlers appending to ``effects``: the outside world, to count side effects."""
    reg = Registry()

    def effect(what: str) -> None:
        with effects.open("a", encoding="utf-8") as out:
            out.write(what + "\n")

    @reg.action("record the start")
    def start(ctx: RunContext) -> None:
        effect("start")

    @reg.action("record the tag")
    def tag(ctx: RunContext) -> None:
        effect("tag")

    @reg.action("record the end")
    def end(ctx: RunContext) -> None:
        effect("end")

    return reg
