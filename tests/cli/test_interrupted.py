"""A run whose process was SIGKILLed shows ``interrupted`` (not ``running``) in ``sop runs``
and ``sop inspect`` with the command that continues it, while a live run still shows
``running``; the printed command completes the run and repeats no side effect."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Slow Pay

**Version**: 1.0.0

## Overview

Two side effects; the second waits until the test lets it go.

## Steps

### 1. Charge

**Actions**:
- MUST record the charge

### 2. Notify

**Actions**:
- MUST send the receipt
"""

HANDLERS = """\
import os
import time
from pathlib import Path

from engine.binding.registry import action

EFFECTS = Path(os.environ["SLOW_EFFECTS"])
GATE = Path(os.environ["SLOW_GATE"])


def _write(line):
    with EFFECTS.open("a") as fh:
        fh.write(line + "\\n")
        fh.flush()
        os.fsync(fh.fileno())


@action("record the charge")
def charge(ctx):
    _write(f"charge {ctx.idempotency_key()}")


@action("send the receipt")
def receipt(ctx):
    _write(f"receipt-start {ctx.idempotency_key()}")
    while not GATE.exists():
        time.sleep(0.02)
    _write(f"receipt {ctx.idempotency_key()}")
    ctx.output["sent"] = True
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "slow-pay.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "slow_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _env(project: Path) -> dict[str, str]:
    return {
        "SLOW_EFFECTS": str(project / "effects.txt"),
        "SLOW_GATE": str(project / "gate"),
        "PYTHONPATH": pythonpath(project),
    }


def _sop(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    journal = str(project / "journal.db")
    return sop_cli(
        *args, "--journal", journal, cwd=project, env=_env(project), drop=["SOP_JOURNAL"]
    )


def _effects(project: Path) -> list[str]:
    path = project / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def _only_run(project: Path) -> dict[str, str]:
    listed = _sop(project, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    return dict(row)


def test_a_killed_run_is_interrupted_and_its_printed_command_completes_it(
    project: Path,
) -> None:
    journal = str(project / "journal.db")
    command = [sys.executable, "-m", "engine", "run", "slow-pay", "--handlers", "slow_handlers"]
    proc = subprocess.Popen(
        [*command, "--journal", journal],
        cwd=project,
        env={**os.environ, **_env(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("receipt-start") for line in _effects(project)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the second action never started"
            time.sleep(0.02)
        live = _only_run(project)
        assert live["status"] == "running"  # its owner is alive: not interrupted
        assert "resume_command" not in live
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    run = _only_run(project)
    run_id = run["run_id"]
    expected = f"sop resume {run_id} --journal {shlex.quote(journal)}"
    assert run["status"] == "interrupted"
    assert run["resume_command"] == expected

    table = _sop(project, "runs")
    assert f"{run_id}  interrupted" in table.stdout
    assert expected in table.stdout

    shown = _sop(project, "inspect", run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].endswith(" interrupted")
    assert f"continue it with: {expected}" in shown.stdout
    as_json = json.loads(_sop(project, "inspect", run_id, "--json").stdout)
    assert as_json["run"]["status"] == "interrupted"
    assert as_json["run"]["resume_command"] == expected

    (project / "gate").touch()
    words = shlex.split(expected)
    assert words[0] == "sop"
    resumed = sop_cli(*words[1:], "--json", cwd=project, env=_env(project), drop=["SOP_JOURNAL"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert _only_run(project)["status"] == "succeeded"

    effects = [line.split() for line in _effects(project)]
    assert [name for name, _ in effects] == ["charge", "receipt-start", "receipt-start", "receipt"]
    assert len({key for name, key in effects if name.startswith("receipt")}) == 1
