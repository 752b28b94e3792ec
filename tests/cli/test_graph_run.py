"""``sop graph NAME --run RUN_ID``: a real run journaled in SQLite, drawn by a real ``sop``
subprocess, every line coloured by what the run did to it."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.binding.registry import Registry
from engine.errors import SopFailure
from engine.execution.runner import RunStatus, run
from engine.language.parser import parse
from engine.storage.journal import Journal
from tests.support.cli import sop_cli

SOP_TEXT = """\
# Graph Demo

## Overview

A procedure to draw a run on.

## Steps

### 1. Validate

**Actions**:
- MUST verify the customer
- SHOULD check the customer is not flagged

**Error Handling**:
- If customer not found: Return error with "Customer not found" message

### 2. Execute

**Actions**:
- MUST call the payment API

### 3. Finish

**Actions**:
- MUST write the receipt
"""


@pytest.fixture
def failed_run(tmp_path: Path) -> tuple[Path, Path, str]:
    """A run that passed line 8, skipped the unbound SHOULD, failed at step 2."""
    path = tmp_path / "graph-demo.sop.md"
    path.write_text(SOP_TEXT, encoding="utf-8")
    registry = Registry()

    @registry.action("verify the customer")
    def verify(ctx: object) -> None:
        return None

    @registry.action("call the payment API")
    def call_api(ctx: object) -> None:
        raise SopFailure("card declined", "Card declined")

    @registry.action("write the receipt")
    def receipt(ctx: object) -> None:
        return None

    journal_path = tmp_path / "journal.db"
    sop = parse(SOP_TEXT, path=str(path))
    with Journal(journal_path) as journal:
        result = run(sop, {}, registry=registry, journal=journal)
    assert result.status is RunStatus.FAILED
    return path, journal_path, result.run_id


def _classes(text: str) -> dict[str, str]:
    """Mermaid node id -> its class (status)."""
    return dict(re.findall(r"^    class (\w+) (\w+)$", text, re.M))


def test_mermaid_colours_each_line_by_its_status(
    failed_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    path, journal, run_id = failed_run
    proc = sop_cli("graph", str(path), "--run", run_id, "--journal", str(journal), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    classes = _classes(proc.stdout)
    assert classes["s1_1"] == "passed"  # MUST verify the customer
    assert classes["s1_2"] == "skipped"  # SHOULD ...: no handler
    assert classes["s2_1"] == "failed"  # MUST call the payment API
    assert classes["s3_1"] == "not_reached"  # after the failure
    assert 's1x1(["Customer not found"])' in proc.stdout


def test_svg_of_a_run_for_a_ticket(failed_run: tuple[Path, Path, str], tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is missing: `make test` installs it (apt-get install graphviz)")
    path, journal, run_id = failed_run
    args = ("graph", str(path), "--run", run_id, "--journal", str(journal), "--format", "svg")
    proc = sop_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in proc.stdout
    for word in ("passed", "skipped", "failed", "not reached", "Customer not found"):
        assert f">{word}<" in proc.stdout, word
    assert "#fbd5d5" in proc.stdout  # the failed line's fill


def test_without_dot_svg_fails_in_one_line(
    failed_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    path, journal, run_id = failed_run
    args = ("graph", str(path), "--run", run_id, "--journal", str(journal), "--format", "svg")
    empty = tmp_path / "bin"
    empty.mkdir()
    python_dir = str(Path(sys.executable).parent)
    proc = sop_cli(*args, cwd=tmp_path, env={"PATH": f"{python_dir}:{empty}"})
    if shutil.which("dot", path=python_dir):
        pytest.skip("dot lives beside python here")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "graphviz" in proc.stderr and "Traceback" not in proc.stderr


def test_a_run_of_another_sop_or_no_run_is_a_usage_error(
    failed_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, journal, run_id = failed_run
    other = sop_cli(
        "graph", "payment-processing", "--run", run_id, "--journal", str(journal), cwd=tmp_path
    )
    assert other.returncode == 2
    assert "a run of 'graph-demo', not of 'payment-processing'" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    missing = sop_cli(
        "graph", "payment-processing", "--run", "nope", "--journal", str(journal), cwd=tmp_path
    )
    assert missing.returncode == 2 and "--run nope: unknown run" in missing.stderr


PARENT = """\
# Parent Demo

## Overview

A procedure whose subscription path runs another SOP.

## Parameters

- **operation** (string): What to do
  - Values: `charge` | `subscription`

## Steps

### 1. Execute

**Actions**:
- MUST execute the operation

**For Charges**:
- MUST charge the card

### 2. Finish

**Actions**:
- MUST finish up

## Related SOPs

- [Subscription Child](subscription-child.sop.md)
"""

CHILD = """\
# Subscription Child

## Overview

The child procedure.

## Steps

### 1. Subscribe

**Actions**:
- MUST subscribe the customer
"""


def test_the_child_sop_node_takes_the_child_runs_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sops = tmp_path / "sops"
    sops.mkdir()
    (sops / "parent-demo.sop.md").write_text(PARENT, encoding="utf-8")
    (sops / "subscription-child.sop.md").write_text(CHILD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the catalog finds ./sops, as `sop` does
    registry = Registry()

    @registry.action("execute the operation")
    def execute(ctx: Any) -> None:
        if ctx.params["operation"] == "subscription":
            assert ctx.run_child("subscription-child", {}).status is RunStatus.SUCCEEDED

    for line in ("charge the card", "finish up", "subscribe the customer"):
        registry.action(line)(lambda ctx: None)

    journal_path = tmp_path / "journal.db"
    sop = parse(PARENT, path=str(sops / "parent-demo.sop.md"))
    with Journal(journal_path) as journal:
        result = run(sop, {"operation": "subscription"}, registry=registry, journal=journal)
    assert result.status is RunStatus.SUCCEEDED
    proc = sop_cli(
        "graph",
        "parent-demo",
        "--run",
        result.run_id,
        "--journal",
        str(journal_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert 'c1[["runs subscription-child"]]' in proc.stdout
    assert '    s1 ==>|"operation = subscription"| c1' in proc.stdout
    classes = _classes(proc.stdout)
    assert classes["c1"] == "passed"  # the child run succeeded
    assert classes["s1b1_1"] == "skipped"  # MUST charge the card: off the selected path
    assert classes["s2_1"] == "passed"


GATED = """\
# Gated Demo

## Overview

A procedure that waits for a person.

## Steps

### 1. Refund

**Actions**:
- MUST require confirmation for refunds over 100
- MUST refund the payment
"""


def test_a_paused_run_shows_its_gate_pending_then_passed_after_confirmation(
    tmp_path: Path,
) -> None:
    from engine.errors import ConfirmationRequired
    from engine.execution.run_graph import action_statuses
    from engine.execution.runner import resume
    from engine.language.graph import to_json

    registry = Registry()

    @registry.action("require confirmation for refunds over {n:d}")
    def gate(ctx: Any, n: int) -> None:
        if not ctx.confirms({"refund": n}):
            raise ConfirmationRequired("confirm the refund", {"refund": n})

    registry.action("refund the payment")(lambda ctx: None)
    path = tmp_path / "gated-demo.sop.md"
    path.write_text(GATED, encoding="utf-8")  # resume reads the SOP from its recorded path
    sop = parse(GATED, path=str(path))
    with Journal(tmp_path / "journal.db") as journal:
        paused = run(sop, {}, registry=registry, journal=journal)
        assert paused.status is RunStatus.PAUSED and paused.pending is not None
        before = action_statuses(journal, paused.run_id)
        resume(paused.run_id, confirm=paused.pending["token"], registry=registry, journal=journal)
        after = action_statuses(journal, paused.run_id)
    gate_id, refund_id = (a.id for a in sop.all_actions())
    assert (before[gate_id], before[refund_id]) == ("pending", "not reached")
    assert (after[gate_id], after[refund_id]) == ("passed", "passed")
    (line,) = [
        i for n in to_json(sop, before)["nodes"] for i in n.get("lines", []) if i.get("gate")
    ]
    assert line["status"] == "pending"
