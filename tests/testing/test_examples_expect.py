"""An Example may expect a failure (``status: failed``, ``error: TEXT``); an Example that
does not expects the run not to fail; ``sop test -k PATTERN`` selects examples by name
and ``-x`` stops at the first failure. Real ``sop test`` subprocesses on a small SOP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.testing import expect
from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Lookup

**Version**: 1.0.0

## Overview

Looks a customer up.

## Parameters

### Required
- **customer_id** (string): Customer identifier

## Steps

### 1. Look Up

**Actions**:
- MUST look up the customer

**Error Handling**:
- If customer not found: Return error with "Customer not found" message

## Examples

### Example 1: Known customer

```
Input:
  customer_id: cus_known

Expected Output:
  customer: cus_known
```

### Example 2: Unknown customer fails

```
Input:
  customer_id: cus_missing

Expected Output:
  status: failed
  error: Customer not found
```

### Example 3: Bug by type

```
Input:
  customer_id: cus_bug

Expected Output:
  error: KeyError
```

### Example 4: Output shown, run failed

```
Input:
  customer_id: cus_missing

Expected Output:
  customer: cus_missing
```
"""

HANDLERS = """\
from engine.binding.registry import action
from engine.errors import SopFailure


@action("look up the customer")
def look_up(ctx):
    ctx.output["customer"] = ctx.params["customer_id"]
    if ctx.params["customer_id"] == "cus_missing":
        raise SopFailure("customer not found", message="no such customer")
    if ctx.params["customer_id"] == "cus_bug":
        return {}["missing_key"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "lookup.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "lookup_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _test(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": pythonpath(project), "SOP_TEST_SANDBOX": "0"}
    journal = str(project / "journal.db")
    return sop_cli(
        "test", "lookup", "--handlers", "lookup_handlers", "--journal", journal, *args,
        cwd=project, env=env, drop=["SOP_JOURNAL"],
    )  # fmt: skip


def _verdicts(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line.split(" (line")[0] for line in proc.stdout.splitlines() if line[:4] in ("PASS", "FAIL")
    ]


def test_examples_may_expect_a_failure_and_others_must_not_fail(project: Path) -> None:
    proc = _test(project)
    assert proc.returncode == 1, proc.stderr
    assert _verdicts(proc) == [
        "PASS lookup example 1: Known customer",
        "PASS lookup example 2: Unknown customer fails",
        "PASS lookup example 3: Bug by type",
        "FAIL lookup example 4: Output shown, run failed",
    ]
    assert "run failed (Customer not found); an Example expecting it names status or error" in (
        proc.stdout
    )
    assert proc.stdout.splitlines()[-1] == "3 passed, 1 failed"


def test_a_wrong_expectation_of_the_run_is_reported(project: Path) -> None:
    text = (project / "sops" / "lookup.sop.md").read_text()
    text = text.replace(
        "  status: failed\n  error: Customer not found",
        "  status: succeeded\n  error: Card declined",
    )
    (project / "sops" / "lookup.sop.md").write_text(text)
    proc = _test(project, "-k", "unknown")
    assert proc.returncode == 1
    assert _verdicts(proc) == ["FAIL lookup example 2: Unknown customer fails"]
    assert "status: expected 'succeeded', got 'failed'" in proc.stdout
    assert (
        "error: expected 'Card declined', got ['Customer not found', 'SopFailure']" in proc.stdout
    )


def test_k_selects_by_name_and_x_stops_at_the_first_failure(project: Path) -> None:
    selected = _test(project, "-k", "CUSTOMER")
    assert selected.returncode == 0, selected.stdout
    assert _verdicts(selected) == [
        "PASS lookup example 1: Known customer",
        "PASS lookup example 2: Unknown customer fails",
    ]
    assert selected.stdout.splitlines()[-1] == "2 passed, 0 failed, 2 deselected by -k 'CUSTOMER'"

    text = (project / "sops" / "lookup.sop.md").read_text()
    (project / "sops" / "lookup.sop.md").write_text(
        text.replace("error: KeyError", "error: ValueError")
    )
    stopped = _test(project, "-x")
    assert stopped.returncode == 1
    assert _verdicts(stopped)[-1] == "FAIL lookup example 3: Bug by type"
    assert len(_verdicts(stopped)) == 3  # example 4 never ran
    assert stopped.stdout.splitlines()[-1] == "2 passed, 1 failed"


def test_status_and_error_of_the_output_itself_stay_output_fields() -> None:
    want = expect.split({"status": "succeeded", "amount": 5}, {"status": "succeeded"})
    assert want.status is None and want.output == {"status": "succeeded", "amount": 5}
    run_level = expect.split({"status": "failed", "error": ["a", "b"]}, {})
    assert run_level.status == "failed" and run_level.errors == ["a", "b"]
    assert run_level.output == {}
    assert expect.split({"status": "shipped"}, {}).output == {"status": "shipped"}
