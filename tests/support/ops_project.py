"""A small SOP and handlers for the operators' CLI tests (progress, timeline, runs).

``dawdle`` waits until the file ``$OPS_RELEASE`` exists (when set), so a test holds a
run in flight without sleeping for a guessed time; ``flaky`` fails twice with a
retryable "network timeout" (counted in ``$OPS_COUNTS``) and then passes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Ops Demo

**Version**: 1.2.0

## Overview

For the operators' CLI tests.

## Parameters

- **amount** (integer): Amount in cents
  - Constraints: Must be positive, max 99999999

## Steps

### 1. Prepare

**Actions**:
- MUST say hello
- SHOULD dawdle a little
- MAY log the weather

### 2. Pay

**Actions**:
- MUST reach the bank
- MUST pay the amount

**Error Handling**:
- If card declined: Return error with "Your card was declined" message

## Error Recovery

| Error Type | Recovery Procedure |
|------------|-------------------|
| Network timeout | Retry up to 3 times with backoff |

## Security Considerations

- SHOULD require confirmation for amounts > $100
"""

HANDLERS = """\
import os
import sys
import time
from pathlib import Path

from engine import ConfirmationRequired, SopFailure
from engine.binding.registry import action


@action("require confirmation for amounts > ${limit:d}")
def gate(ctx, limit):
    operation = {"pay": ctx.params["amount"]}
    if ctx.params["amount"] > limit * 100 and not ctx.confirms(operation):
        raise ConfirmationRequired(f"Amount exceeds ${limit}.", operation, {})


@action("say hello")
def hello(ctx):
    print("HANDLER hello", file=sys.stderr, flush=True)


@action("dawdle a little")
def dawdle(ctx):
    release = os.environ.get("OPS_RELEASE")
    if release:
        for _ in range(2400):
            if Path(release).exists():
                return
            time.sleep(0.025)


@action("reach the bank")
def flaky(ctx):
    counts = Path(os.environ["OPS_COUNTS"])
    n = int(counts.read_text()) if counts.exists() else 0
    counts.write_text(str(n + 1))
    if n < 2:
        raise SopFailure("network timeout")


@action("pay the amount")
def pay(ctx):
    if ctx.params["amount"] == 13:
        raise SopFailure("card declined")
    ctx.output.update(paid=ctx.params["amount"])
"""


def make_project(root: Path) -> Path:
    (root / "sops").mkdir()
    (root / "sops" / "ops-demo.sop.md").write_text(SOP, encoding="utf-8")
    (root / "ops_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return root


def env(project: Path, **extra: str) -> dict[str, str]:
    return {
        "PYTHONPATH": pythonpath(project),
        "OPS_COUNTS": str(project / "counts.txt"),
        "SOP_RETRY_BASE_SECONDS": "0.001",
        "COLUMNS": "200",
        **extra,
    }


def sop(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, cwd=project, env=env(project, **extra), drop=["SOP_JOURNAL"])


def run(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """``sop run ops-demo`` with a fresh retry counter (each run fails twice, then passes)."""
    (project / "counts.txt").unlink(missing_ok=True)
    return sop(project, "run", "ops-demo", "--handlers", "ops_handlers", *args, **extra)
