"""`sop run / resume / runs / inspect` as a real subprocess: output and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from engine.language.resources import load_schema
from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Cli Demo

**Version**: 0.3.0

## Overview

For the CLI tests.

## Parameters

- **amount** (integer): Amount in cents
  - Constraints: Must be positive, max 99999999

## Steps

### 1. Check

**Actions**:
- MUST check the amount
- SHOULD tell the owner
- MAY log the weather

### 2. Pay

**Actions**:
- MUST pay the amount

**Error Handling**:
- If card declined: Return error with "Your card was declined" message

## Security Considerations

- SHOULD require confirmation for amounts > $100
"""

HANDLERS = """\
import os
from pathlib import Path

from engine import ConfirmationRequired, SopFailure
from engine.binding.registry import action

EFFECTS = Path(os.environ["CLI_EFFECTS"])


def _write(line):
    with EFFECTS.open("a") as fh:
        fh.write(line + "\\n")


@action("require confirmation for amounts > ${limit:d}")
def gate(ctx, limit):
    operation = {"pay": ctx.params["amount"]}
    if ctx.params["amount"] > limit * 100 and not ctx.confirms(operation):
        raise ConfirmationRequired(
            f"Amount exceeds ${limit}. Please confirm.", operation, {"requires_confirmation": True}
        )


@action("check the amount")
def check_amount(ctx):
    _write("check")


@action("pay the amount")
def pay(ctx):
    if ctx.params["amount"] == 13:
        raise SopFailure("card declined")
    _write("pay")
    ctx.output.update(success=True, amount=ctx.params["amount"], card="4242 4242 4242 4242")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "cli-demo.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "cli_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def sop(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "CLI_EFFECTS": str(project / "effects.txt"),
        "PYTHONPATH": pythonpath(project),
        "SOP_RETRY_BASE_SECONDS": "0.001",
    }
    return sop_cli(*args, cwd=project, env=env, drop=["SOP_JOURNAL"])


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return sop(project, "run", "cli-demo", "--handlers", "cli_handlers", *args)


def effects(project: Path) -> list[str]:
    path = project / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_success_text_report(project: Path) -> None:
    proc = run(project, "-p", "amount=500")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.match(r"run [0-9a-f]{32}: cli-demo 0\.3\.0 succeeded\n", out)
    assert "output:\n  success: true\n  amount: 500\n  card: 424242******4242\n" in out
    assert re.search(r"passed\s+MUST\s+L\d+\s+check the amount", out)
    assert re.search(r"skipped\s+SHOULD\s+L\d+\s+tell the owner  \(no handler\)", out)
    assert re.search(r"skipped\s+MAY\s+L\d+\s+log the weather  \(no handler\)", out)
    assert "4242 4242 4242 4242" not in out
    assert effects(project) == ["check", "pay"]
    assert (project / ".sop" / "journal.db").is_file()  # the default journal


def test_json_output_validates(project: Path) -> None:
    proc = run(project, "-p", "amount=500", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, load_schema("run-result.schema.json"))
    assert data["status"] == "succeeded" and data["output"]["amount"] == 500


def test_failed_run_exit_1_with_sop_message(project: Path) -> None:
    proc = run(project, "-p", "amount=13")
    assert proc.returncode == 1
    assert "failed" in proc.stdout.splitlines()[0]
    assert "errors:\n  Your card was declined\n" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_invalid_params_exit_2_nothing_runs(project: Path) -> None:
    proc = run(project, "-p", "amount=-5")
    assert proc.returncode == 2
    assert proc.stderr.startswith("sop: error:") and "amount" in proc.stderr
    assert effects(project) == []
    bad = run(project, "-p", "amount=abc")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_unknown_sop_exit_2(project: Path) -> None:
    proc = sop(project, "run", "no-such-sop")
    assert proc.returncode == 2 and "unknown SOP 'no-such-sop'" in proc.stderr


def test_unbound_must_refused_exit_1(project: Path) -> None:
    (project / "other_handlers.py").write_text(
        HANDLERS.replace('@action("pay the amount")', '@action("pay something else")')
    )
    proc = sop(project, "run", "cli-demo", "--handlers", "other_handlers", "-p", "amount=5")
    assert proc.returncode == 1
    assert "refusing to run cli-demo: 1 required line(s) have no handler" in proc.stderr
    assert re.search(r"cli-demo\.sop\.md:\d+: MUST pay the amount", proc.stderr)
    assert effects(project) == []  # the first handler never ran


def test_pause_confirm_and_token_reuse(project: Path) -> None:
    paused = run(project, "-p", "amount=15000")
    assert paused.returncode == 3, paused.stderr
    assert "paused: Amount exceeds $100. Please confirm." in paused.stdout
    found = re.search(r"sop resume ([0-9a-f]{32}) --confirm (sopc_\S+)", paused.stdout)
    assert found, paused.stdout
    run_id, token = found.groups()
    assert effects(project) == []

    wrong = sop(project, "resume", run_id, "--confirm", "sopc_wrong")
    assert wrong.returncode == 1 and "does not match" in wrong.stderr

    done = sop(project, "resume", run_id, "--confirm", token, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert effects(project) == ["check", "pay"]

    reused = sop(project, "resume", run_id, "--confirm", token)
    assert reused.returncode == 1
    assert reused.stderr.strip() == "sop: error: confirmation token already used"
    assert effects(project) == ["check", "pay"]


def test_confirm_through_run(project: Path) -> None:
    paused = run(project, "-p", "amount=15000", "--json")
    assert paused.returncode == 3
    data = json.loads(paused.stdout)
    token = data["pending"]["token"]
    assert data["pending"]["operation"] == {"pay": 15000}
    done = run(project, "-p", "amount=15000", "--confirm", token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run {data['run_id']}:")


def test_runs_and_inspect(project: Path) -> None:
    first = run(project, "-p", "amount=500", "--json")
    run_id = json.loads(first.stdout)["run_id"]
    listed = sop(project, "runs")
    assert listed.returncode == 0 and run_id in listed.stdout and "succeeded" in listed.stdout
    rows = json.loads(sop(project, "runs", "--json").stdout)
    assert [r["run_id"] for r in rows] == [run_id]

    text = sop(project, "inspect", run_id)
    assert text.returncode == 0
    assert "  +0.000s  run started" in text.stdout and "run finished: succeeded" in text.stdout
    assert re.search(r"passed\s+step 2 L\d+ MUST pay the amount", text.stdout)
    data = json.loads(sop(project, "inspect", run_id, "--json").stdout)
    assert data["run"]["params"] == {"amount": 500}
    assert data["result"]["status"] == "succeeded"
    assert [e["seq"] for e in data["events"]] == sorted(e["seq"] for e in data["events"])

    missing = sop(project, "inspect", "nope")
    assert missing.returncode == 2 and "unknown run 'nope'" in missing.stderr
    assert sop(project, "resume", "nope").returncode == 2


def test_read_commands_do_not_create_a_journal(project: Path) -> None:
    proc = sop(project, "runs")
    assert proc.returncode == 0 and "no runs" in proc.stdout
    assert not (project / ".sop").exists()


def test_custom_journal_flag_in_resume_hint(project: Path) -> None:
    journal = project / "elsewhere.db"
    paused = run(project, "-p", "amount=20000", "--journal", str(journal))
    assert paused.returncode == 3
    assert f"--journal {journal}" in paused.stdout
    assert journal.is_file() and not (project / ".sop").exists()


def test_params_file(project: Path) -> None:
    (project / "params.yaml").write_text("amount: 700\n")
    proc = run(project, "--params-file", "params.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"]["amount"] == 700
    (project / "bad.yaml").write_text("- not a mapping\n")
    bad = run(project, "--params-file", "bad.yaml")
    assert bad.returncode == 2 and "expected a mapping" in bad.stderr
    assert effects(project) == ["check", "pay"]
