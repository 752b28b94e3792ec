"""`sop run --performer`, `sop report`, `sop resume` and `sop inspect` as real subprocesses;
a SIGKILL between a report and the walk it starts; the checklist walked through a pty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import sop_cli
from tests.support.guided import MIXED, write

HANDLERS = "tests.support.guided_handlers"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "GUIDED_EFFECTS": str(tmp_path / "fx"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _sop(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    journal = str(tmp_path / "j.db")
    return sop_cli(*args, "--handlers", HANDLERS, "--journal", journal, cwd=tmp_path, env=env)


def _start(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    path = write(tmp_path)
    done = _sop(tmp_path, env, "run", str(path), "-p", "mode=quick", "--json")
    assert done.returncode == 3, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_without_a_tty_the_run_pauses_and_prints_the_tasks(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write(tmp_path, MIXED.replace("**Performer**: agent\n", ""))
    done = _sop(tmp_path, env, "run", str(path), "-p", "mode=quick", "--performer", "person")
    assert done.returncode == 3, done.stderr
    assert "waiting for the person's reports (step 1: Prepare):" in done.stdout
    assert f"{path}:22" in done.stdout and "write the changelog" in done.stdout
    assert "sop report " in done.stdout
    plan = _sop(tmp_path, env, "plan", str(path), "-p", "mode=quick", "--performer", "agent")
    assert plan.returncode == 0 and " agent " in plan.stdout


def test_report_one_task_at_a_time_then_the_run_goes_on(
    tmp_path: Path, env: dict[str, str]
) -> None:
    rid = str(_start(tmp_path, env)["run_id"])
    skip = _sop(tmp_path, env, "report", rid, "L22", "--skip", "--note", "later")
    assert skip.returncode == 1
    assert skip.stderr.count("\n") == 1 and ":22: MUST write the changelog" in skip.stderr
    one = _sop(
        tmp_path, env, "report", rid, "L22", "--done", "--note", "CHANGELOG.md", "--by", "bot"
    )
    assert one.returncode == 3 and "still waits on" in one.stderr
    for task, flag in (("L23", "--skip"), ("L24", "--done"), ("L27", "--done")):
        done = _sop(tmp_path, env, "report", rid, task, flag, "--note", "n/a")
    assert done.returncode == 3 and "step 2: Tag" in done.stdout
    last = _sop(tmp_path, env, "report", rid, "L36", "--done", "--note", "v1", "--json")
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["status"] == "succeeded"
    shown = _sop(tmp_path, env, "inspect", rid)
    assert "reports:" in shown.stdout and "done     by bot: CHANGELOG.md" in shown.stdout
    assert (tmp_path / "fx").read_text() == "start\ntag\nend\n"


def test_sigkill_between_a_report_and_the_walk_repeats_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = _start(tmp_path, env)
    rid = str(result["run_id"])
    for task in ("L22", "L23", "L24"):
        _sop(tmp_path, env, "report", rid, task, "--done")
    crash = {**env, "SOP_CRASH_AFTER": "task_reported:step1:check:L27"}
    journal = str(tmp_path / "j.db")
    args = ("report", rid, "L27", "--done", "--handlers", HANDLERS, "--journal", journal)
    killed = sop_cli(*args, cwd=tmp_path, env=crash)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "fx").read_text() == "start\n"  # killed before the walk went on
    resumed = _sop(tmp_path, env, "resume", rid, "--json")
    assert resumed.returncode == 3, resumed.stderr  # the report stood: now step 2 waits
    assert [t["line"] for t in json.loads(resumed.stdout)["tasks"]] == [36]
    assert (tmp_path / "fx").read_text() == "start\n"  # step 1's bound line: once
    last = _sop(tmp_path, env, "report", rid, "L36", "--done")
    assert last.returncode == 0, last.stderr
    assert (tmp_path / "fx").read_text() == "start\ntag\nend\n"
    verify = _sop(tmp_path, env, "journal", "verify")
    assert verify.returncode == 0, verify.stderr


def _pty_run(
    tmp_path: Path, env: dict[str, str], answers: list[bytes], interrupt: bool
) -> tuple[int, str]:
    """`sop run --performer person` on a pseudo-terminal, answering each prompt in turn."""
    import pty
    import select

    path = write(tmp_path, MIXED.replace("**Performer**: agent\n", ""))
    argv = [sys.executable, "-m", "engine", "run", str(path), "-p", "mode=quick"]
    argv += ["--performer", "person", "--handlers", HANDLERS, "--journal", str(tmp_path / "j.db")]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin and stdout
        os.chdir(tmp_path)
        os.execve(sys.executable, argv, {**os.environ, **env, "COLUMNS": "120", "TERM": "dumb"})
    out = b""
    pending = list(answers)
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        tail = out.rsplit(b"\n", 1)[-1]
        if tail.rstrip().endswith(b":") or tail.rstrip().endswith(b"):"):
            if pending:
                os.write(fd, pending.pop(0))
            elif interrupt:
                os.write(fd, b"\x03")
                interrupt = False
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_a_person_walks_the_checklist_at_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    answers = [
        b"done\r",
        b"wrote it\r",  # L22
        b"skip\r",
        b"nothing to document\r",  # L23 (SHOULD)
        b"done\r",
        b"\r",  # L24 (MUST NOT: acknowledged)
        b"done\r",
        b"checked\r",  # L27
        b"done\r",
        b"v1.0.0\r",  # L36, step 2
    ]
    code, out = _pty_run(tmp_path, env, answers, interrupt=False)
    assert code == 0, out
    assert "Step 1: Prepare" in out and "Step 2: Tag" in out and "progress:" in out
    assert "succeeded" in out
    assert (tmp_path / "fx").read_text() == "start\ntag\nend\n"


def test_ctrl_c_at_a_terminal_leaves_the_run_waiting(tmp_path: Path, env: dict[str, str]) -> None:
    code, out = _pty_run(tmp_path, env, [b"done\r"], interrupt=True)
    assert code == 3, out
    assert "left waiting" in out
    runs = _sop(tmp_path, env, "runs", "--json")
    [row] = json.loads(runs.stdout)
    assert row["status"] == "waiting"
    events = _sop(tmp_path, env, "inspect", row["run_id"], "--json")
    assert not [e for e in json.loads(events.stdout)["events"] if e["type"] == "task_reported"]
