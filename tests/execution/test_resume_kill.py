"""SIGKILL a real `sop run` process between actions and inside a handler, then `sop resume`.

Each handler appends a line (its name and idempotency key) to a file: that file is
the outside world. After a resume, every completed action must appear exactly once
and the action that was in flight must have run again with the same key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Kill Me

**Version**: 1.0.0

## Overview

Three side effects in a row.

## Steps

### 1. One

**Actions**:
- MUST append step one

### 2. Two

**Actions**:
- MUST append step two

### 3. Three

**Actions**:
- MUST append step three
"""

RETRY_SOP = """\
# Retry Me

**Version**: 1.0.0

## Overview

One side effect whose first attempt fails with a network error.

## Steps

### 1. One

**Actions**:
- MUST append after a network error

**Error Handling**:
- If network error: Retry with exponential backoff (max 2 retries)
"""

HANDLERS = """\
import os
import time
from pathlib import Path

from engine.binding.registry import action
from engine.errors import SopFailure

EFFECTS = Path(os.environ["KILL_EFFECTS"])
MARKER = Path(os.environ["KILL_MARKER"])


def _write(line):
    with EFFECTS.open("a") as fh:
        fh.write(line + "\\n")
        fh.flush()
        os.fsync(fh.fileno())


@action("append step one")
def one(ctx):
    _write(f"one {ctx.idempotency_key()}")
    ctx.state["one"] = 1
    ctx.output["one"] = "done"


@action("append step two")
def two(ctx):
    assert ctx.state["one"] == 1, "state from step one was not restored"
    _write(f"two-start {ctx.idempotency_key()}")
    while not MARKER.exists():  # blocks here until the test lets it go (or kills it)
        time.sleep(0.02)
    _write(f"two {ctx.idempotency_key()}")
    ctx.output["two"] = "done"


@action("append step three")
def three(ctx):
    _write(f"three {ctx.idempotency_key()}")
    ctx.output["three"] = ctx.state["one"] + 2


@action("append after a network error")
def flaky(ctx):
    _write(f"flaky-{ctx.attempt}-{ctx.reconciling} {ctx.idempotency_key()}")
    if ctx.attempt == 1 and not ctx.reconciling:
        raise SopFailure("network error", message="the network dropped")
    ctx.output["flaky"] = "done"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "kill-me.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "sops" / "retry-me.sop.md").write_text(RETRY_SOP, encoding="utf-8")
    (tmp_path / "kill_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KILL_EFFECTS=str(project / "effects.txt"),
        KILL_MARKER=str(project / "marker"),
        PYTHONPATH=pythonpath(project),
        SOP_JOURNAL=str(project / "journal.db"),
    )
    env.pop("SOP_CRASH_AFTER", None)
    env.update(extra)
    return env


def _sop(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, cwd=project, env=_env(project, **extra), drop=["SOP_CRASH_AFTER"])


def _effects(project: Path) -> list[str]:
    path = project / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def _only_run(project: Path) -> dict[str, str]:
    listed = _sop(project, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    return dict(row)


def _resume_and_check(project: Path, run_id: str) -> dict[str, object]:
    resumed = _sop(project, "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result: dict[str, object] = json.loads(resumed.stdout)
    assert result["status"] == "succeeded"
    assert result["output"] == {"one": "done", "two": "done", "three": 3}
    verify = _sop(project, "journal", "verify")
    assert verify.returncode == 0, verify.stderr
    return result


def test_kill_inside_a_handler_then_resume(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "kill-me", "--handlers", "kill_handlers"],
        cwd=project,
        env=_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("two-start") for line in _effects(project)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "step two never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run = _only_run(project)
    assert run["status"] == "interrupted"  # its process is gone

    (project / "marker").touch()
    _resume_and_check(project, run["run_id"])

    effects = [line.split() for line in _effects(project)]
    names = [name for name, _ in effects]
    assert names == ["one", "two-start", "two-start", "two", "three"]
    keys = {name: [k for n, k in effects if n == name] for name in names}
    assert keys["two-start"][0] == keys["two-start"][1] == keys["two"][0]
    assert len(set(keys["one"] + keys["two"] + keys["three"])) == 3


def test_kill_between_actions_then_resume(project: Path) -> None:
    """Killed right after step one's finish is committed (it shares one commit with step
    two's start), before step two's handler runs: step one must not run again."""
    (project / "marker").touch()  # step two does not block in this test
    crashed = _sop(
        project,
        "run",
        "kill-me",
        "--handlers",
        "kill_handlers",
        SOP_CRASH_AFTER=f"action_finished:step1:action:L{_line('append step one')}",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert [line.split()[0] for line in _effects(project)] == ["one"]
    run = _only_run(project)
    assert run["status"] == "interrupted"  # its process is gone

    result = _resume_and_check(project, run["run_id"])
    assert [line.split()[0] for line in _effects(project)] == ["one", "two-start", "two", "three"]
    one = next(a for a in result["actions"] if a["text"] == "append step one")  # type: ignore[attr-defined]
    assert one["status"] == "passed" and one["attempts"] == 1

    again = _sop(project, "resume", run["run_id"])
    assert again.returncode == 1 and "already succeeded" in again.stderr


def test_kill_right_after_action_started_reruns_with_same_key(project: Path) -> None:
    (project / "marker").touch()
    crashed = _sop(
        project,
        "run",
        "kill-me",
        "--handlers",
        "kill_handlers",
        SOP_CRASH_AFTER=f"action_started:step3:action:L{_line('append step three')}",
    )
    assert crashed.returncode == -signal.SIGKILL
    run = _only_run(project)
    events = _sop(project, "inspect", run["run_id"], "--json")
    started = [
        e["data"]["idempotency_key"]
        for e in json.loads(events.stdout)["events"]
        if e["type"] == "action_started" and e["action_id"].startswith("step3")
    ]
    _resume_and_check(project, run["run_id"])
    effects = [line.split() for line in _effects(project)]
    assert [n for n, _ in effects] == ["one", "two-start", "two", "three"]
    assert effects[-1][1] == started[0]  # the key journaled before the kill


def _line(fragment: str) -> int:
    return next(i for i, text in enumerate(SOP.splitlines(), 1) if fragment in text)


def test_kill_after_handler_returned_before_journal(project: Path) -> None:
    """The one window where a finished side effect is not yet journaled: it runs again,
    with the same idempotency key, so an idempotent external call is not repeated."""
    (project / "marker").touch()
    crashed = _sop(
        project,
        "run",
        "kill-me",
        "--handlers",
        "kill_handlers",
        SOP_CRASH_AFTER=f"handler_returned:step1:action:L{_line('append step one')}",
    )
    assert crashed.returncode == -signal.SIGKILL
    run = _only_run(project)
    _resume_and_check(project, run["run_id"])
    effects = [line.split() for line in _effects(project)]
    assert [n for n, _ in effects] == ["one", "one", "two-start", "two", "three"]
    assert effects[0][1] == effects[1][1]


def test_kill_after_a_retry_is_journaled_then_resume(project: Path) -> None:
    """The retry layer's seam: killed after ``action_retry`` is committed and before the
    attempt it announces. Resume runs the action again as a suspect (reconciling), with
    the same idempotency key, and it succeeds once."""
    line = next(i for i, t in enumerate(RETRY_SOP.splitlines(), 1) if "- MUST append" in t)
    crashed = _sop(
        project,
        "run",
        "retry-me",
        "--handlers",
        "kill_handlers",
        SOP_RETRY_BASE_SECONDS="0",
        SOP_CRASH_AFTER=f"action_retry:step1:action:L{line}",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    run = _only_run(project)
    resumed = _sop(project, "resume", run["run_id"], "--json", SOP_RETRY_BASE_SECONDS="0")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads(resumed.stdout)
    assert (result["status"], result["output"]) == ("succeeded", {"flaky": "done"})
    effects = [line.split() for line in _effects(project)]
    assert [name for name, _ in effects] == ["flaky-1-False", "flaky-1-True"]
    assert effects[0][1] == effects[1][1]  # one idempotency key throughout
    events = json.loads(_sop(project, "inspect", run["run_id"], "--json").stdout)["events"]
    assert [e["type"] for e in events].count("action_finished") == 1
    assert _sop(project, "journal", "verify").returncode == 0
