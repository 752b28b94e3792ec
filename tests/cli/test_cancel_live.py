"""``sop cancel`` of a run another live ``sop run`` process is executing.

The cancel journals a request; the running process finishes the action it is in (never
cut mid-side-effect) and stops before the next one: that one's handler never runs, and
the run ends ``cancelled`` (exit 1) with who and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from engine.storage.journal import Journal
from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Slow Demo SOP

**Version**: 0.1.0

## Overview

Two steps; the first waits until the test lets it go.

## Steps

### 1. Wait

**Actions**:
- MUST wait for the release file

### 2. Act

**Actions**:
- MUST write the marker file
"""

HANDLERS = """\
import os
import time
from pathlib import Path

from engine import action

HERE = Path(os.environ["SLOW_DEMO_DIR"])


@action("wait for the release file")
def wait(ctx):
    (HERE / "started").write_text(ctx.run_id)
    deadline = time.monotonic() + 60
    while not (HERE / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@action("write the marker file")
def marker(ctx):
    (HERE / "marker").write_text("acted")
"""


def test_cancel_stops_a_live_run_before_its_next_action(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "slow-demo.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "slowhandlers.py").write_text(HANDLERS, encoding="utf-8")
    journal = str(tmp_path / "journal.db")
    env = {**os.environ, "PYTHONPATH": pythonpath(tmp_path), "SLOW_DEMO_DIR": str(tmp_path)}
    args = ["run", "slow-demo", "--handlers", "slowhandlers", "--journal", journal, "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        run_id = (tmp_path / "started").read_text()
        cancel = sop_cli("cancel", run_id, "--reason", "wrong customer", "--as", "ops",
                         "--journal", journal, cwd=tmp_path, env=env)  # fmt: skip
        assert cancel.returncode == 0, cancel.stderr
        assert f"cancellation of run {run_id} requested" in cancel.stdout
        (tmp_path / "release").write_text("go")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    result = json.loads(out)
    assert result["status"] == "cancelled"
    assert result["errors"] == ["cancelled by ops: wrong customer"]
    assert [a["status"] for a in result["actions"]] == ["passed", "skipped"]
    assert not (tmp_path / "marker").exists()  # the next action's handler never ran
    resumed = sop_cli("resume", run_id, "--handlers", "slowhandlers", "--journal", journal,
                      cwd=tmp_path, env=env)  # fmt: skip
    assert resumed.returncode == 1 and "was cancelled" in resumed.stderr
    with Journal(journal) as jr:
        assert jr.verify() == []
        requests = [e.data for e in jr.events(run_id) if e.type == "cancel_requested"]
    assert requests == [{"by": "ops", "reason": "wrong customer"}]


def test_cancel_of_a_killed_run_keeps_its_cut_off_action_unknown(tmp_path: Path) -> None:
    """A run SIGKILLed right after a handler acted, before its outcome was journaled: the
    cancel takes the dead owner's lease, ends the run cancelled, and says that action's
    outcome is unknown (never that it failed or did not happen)."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "slow-demo.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "slowhandlers.py").write_text(HANDLERS, encoding="utf-8")
    (tmp_path / "release").write_text("go")
    journal = str(tmp_path / "journal.db")
    env = {**os.environ, "PYTHONPATH": pythonpath(tmp_path), "SLOW_DEMO_DIR": str(tmp_path)}
    crash = {**env, "SOP_CRASH_AFTER": "handler_returned:step2:action:L19"}
    killed = sop_cli("run", "slow-demo", "--handlers", "slowhandlers", "--journal", journal,
                     cwd=tmp_path, env=crash)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "marker").exists()  # the side effect happened; the journal cannot know
    run_id = (tmp_path / "started").read_text()
    cancel = sop_cli("cancel", run_id, "--as", "ops", "--journal", journal, "--json",
                     cwd=tmp_path, env=env)  # fmt: skip
    assert cancel.returncode == 1, cancel.stderr
    result = json.loads(cancel.stdout)
    assert result["status"] == "cancelled"
    assert result["errors"] == [
        "the outcome of step2:action:L19 is unknown (the run stopped during it): check with"
        " the provider before acting again",
        "cancelled by ops",
    ]
    with Journal(journal) as jr:
        assert jr.verify() == []
        assert jr.run(run_id).status == "cancelled"  # type: ignore[union-attr]
