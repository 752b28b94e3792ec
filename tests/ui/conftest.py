"""A project with a refund SOP whose refunds above $100 pause, and its handler module.

The refund handler writes a file per run, so a test sees whether (and how often) the
side effect happened in whichever process ran it (``sop ui`` runs approved runs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Refund Demo SOP

**Version**: 0.1.0

## Overview

Refunds an amount; refunds above $100 wait for a person to confirm.

## Parameters

- **amount** (integer): Amount in cents

## Steps

### 1. Refund

**Actions**:
- MUST require confirmation for refunds > $100
- MUST issue the refund
"""

HANDLERS = """\
import os
from pathlib import Path

from engine import ConfirmationRequired, action


@action("require confirmation for refunds > ${threshold:d}")
def gate(ctx, threshold):
    amount = ctx.params["amount"]
    if amount > threshold * 100 and not ctx.confirmed:
        raise ConfirmationRequired("Refund above $100: confirm", operation={"amount": amount})


@action("issue the refund")
def issue(ctx):
    with open(Path(os.environ["DEMO_DIR"]) / "refunds.log", "a") as log:
        log.write(ctx.run_id + "\\n")
"""


@dataclass
class Demo:
    root: Path
    journal: str | Path  # a file, or a postgresql:// URL
    env: dict[str, str]

    def paused_run(self, amount: int = 15000) -> str:
        """A paused run started by the real ``sop run`` (exit 3); its id."""
        done = sop_cli("run", "refund-demo", "-p", f"amount={amount}", "--handlers",
                       "demohandlers", "--journal", str(self.journal), "--json",
                       cwd=self.root, env=self.env)  # fmt: skip
        assert done.returncode == 3, done.stderr
        import json

        return str(json.loads(done.stdout)["run_id"])

    def refunds(self) -> list[str]:
        log = self.root / "refunds.log"
        return log.read_text().split() if log.exists() else []


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "refund-demo.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "demohandlers.py").write_text(HANDLERS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": pythonpath(tmp_path), "DEMO_DIR": str(tmp_path)}
    return Demo(tmp_path, tmp_path / "journal.db", env)
