"""An unfilled ``sop stub`` skeleton fails as NotImplementedError naming the handler to
write (run errors, the action's cause, ``inspect``), with the redacted traceback under
``--debug``; a NotImplementedError raised deeper than the handler gets no such hint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Stub Me

**Version**: 1.0.0

## Overview

One line nobody has written a handler for yet.

## Steps

### 1. Work

**Actions**:
- MUST send the welcome letter
"""

DEEPER = """\
from engine.binding.registry import action


def _helper():
    raise NotImplementedError("v2 letters")


@action("send the welcome letter")
def send(ctx):
    _helper()
"""


def _sop(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    journal = str(project / "journal.db")
    env = {"PYTHONPATH": pythonpath(project)}
    return sop_cli(*args, "--journal", journal, cwd=project, env=env, drop=["SOP_JOURNAL"])


def test_an_unfilled_stub_names_the_handler_to_write(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "stub-me.sop.md").write_text(SOP, encoding="utf-8")
    stub = _sop(tmp_path, "stub", "stub-me")
    assert stub.returncode == 0, stub.stderr
    (tmp_path / "letters.py").write_text(stub.stdout, encoding="utf-8")
    lines = stub.stdout.splitlines()
    def_line = next(n for n, line in enumerate(lines, 1) if line.startswith("def "))
    decorator = def_line - 1
    assert lines[decorator - 1].startswith("@action(")

    proc = _sop(tmp_path, "run", "stub-me", "--handlers", "letters", "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    hint = (
        "handler send_the_welcome_letter is not written yet:"
        f" fill in its body (letters.py:{decorator})"
    )
    assert result["errors"] == [
        f"NotImplementedError: {hint} (sops/stub-me.sop.md:14: MUST send the welcome letter)"
    ]
    cause = result["actions"][0]["cause"]
    assert cause["type"] == "NotImplementedError"
    assert cause["where"] == f"letters.py:{def_line + 1} in send_the_welcome_letter"
    assert cause["hint"] == hint

    debug = _sop(tmp_path, "run", "stub-me", "--handlers", "letters", "--debug")
    assert "cause: NotImplementedError: sops/stub-me.sop.md:14" in debug.stdout
    assert hint in debug.stdout
    assert f'letters.py", line {def_line + 1}, in send_the_welcome_letter' in debug.stderr

    shown = _sop(tmp_path, "inspect", result["run_id"], "--json")
    assert json.loads(shown.stdout)["result"]["actions"][0]["cause"]["hint"] == hint


def test_a_not_implemented_error_from_deeper_code_is_not_called_a_stub(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "stub-me.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "letters.py").write_text(DEEPER, encoding="utf-8")
    proc = _sop(tmp_path, "run", "stub-me", "--handlers", "letters", "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["errors"] == ["NotImplementedError: v2 letters"]
    cause = result["actions"][0]["cause"]
    assert "hint" not in cause
    assert cause["where"] == "letters.py:10 in send"
    assert cause["raised_at"] == "letters.py:5 in _helper"
