"""``sop run`` / ``sop resume`` on stderr: the run id first, then progress; ``--quiet``.

Real subprocesses: a pipe (plain lines, one per action settled) and a pseudo-terminal
(rich's live line with the step, the action, its elapsed time).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ops_project import env, make_project, run, sop

AMOUNT = ("-p", "amount=500")
RUN_ID = re.compile(r"run ([0-9a-f]{32})")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_run_id_first_then_one_plain_line_per_settled_action(project: Path) -> None:
    proc = run(project, "-p", "amount=500")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    run_id = RUN_ID.match(proc.stdout)
    assert run_id, proc.stdout
    assert lines[0] == f"run {run_id.group(1)}: ops-demo 1.2.0 started"
    assert lines.index("HANDLER hello") > 0  # the id is out before any handler ran
    settled = [line for line in lines[1:] if line != "HANDLER hello"]
    assert len(settled) == 5  # guard, hello, dawdle, bank, pay (unbound MAY: no event)
    assert re.fullmatch(r"  passed   step 1 L\d+ MUST say hello  \d+\.\d{3}s", settled[1])
    assert re.fullmatch(
        r"  passed   step 2 L\d+ MUST reach the bank  \d+\.\d{3}s, 3 attempts", settled[3]
    )
    assert "\x1b[" not in proc.stderr  # no terminal codes in a pipe


def test_failure_settles_with_the_sop_message(project: Path) -> None:
    proc = run(project, "-p", "amount=13")
    assert proc.returncode == 1
    assert re.search(
        r"^  failed   step 2 L\d+ MUST pay the amount  \S+  \(Your card was declined\)$",
        proc.stderr,
        re.M,
    )


def test_quiet_prints_only_the_result(project: Path) -> None:
    proc = run(project, "-p", "amount=500", "--quiet")
    assert proc.returncode == 0
    assert proc.stderr == "HANDLER hello\n"  # the handler's own line; nothing from sop
    assert RUN_ID.match(proc.stdout)
    data = run(project, "-p", "amount=500", "-q", "--json")
    assert json.loads(data.stdout)["status"] == "succeeded"


def test_resume_prints_the_run_id_first(project: Path) -> None:
    paused = run(project, "-p", "amount=20000", "--json", "-q")
    assert paused.returncode == 3 and paused.stderr == ""
    data = json.loads(paused.stdout)
    (project / "counts.txt").unlink(missing_ok=True)
    done = sop(project, "resume", data["run_id"], "--confirm", data["pending"]["token"])
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"run {data['run_id']}: resumed"
    assert any(re.match(r"  passed   step 2 L\d+ MUST pay the amount", x) for x in lines)


def test_refused_resume_prints_one_line_only(project: Path) -> None:
    paused = run(project, "-p", "amount=20000", "--json", "-q")
    run_id = json.loads(paused.stdout)["run_id"]
    refused = sop(project, "resume", run_id)  # no token: nothing runs, no run id line
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("sop: error:")


LIVE = re.compile(rb"> .{0,40}step 1 L\d+ SHOULD dawdle a little .{0,40}\d+\.\ds")


def _read_all(fd: int, proc: subprocess.Popen[str], release: Path) -> bytes:
    """Everything the child writes to its terminal; ``release`` is written once the live
    line showed the held action (so the test never guesses how long to wait)."""
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output from the terminal side: {out!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return out
        if not chunk:
            return out
        out += chunk
        if not release.exists() and LIVE.search(re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", out)):
            release.write_text("go")


def test_live_progress_on_a_terminal(project: Path) -> None:
    """stderr a pseudo-terminal: rich draws the action in flight with its elapsed time."""
    release = project / "release"
    master, slave = os.openpty()
    environ = {**os.environ, **env(project, OPS_RELEASE=str(release))}
    environ.pop("SOP_JOURNAL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "ops-demo", "--handlers", "ops_handlers", *AMOUNT],
        cwd=project,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    os.close(slave)
    try:
        shown = _read_all(master, proc, release).decode("utf-8", "replace")
    finally:
        os.close(master)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, shown
    run_id = RUN_ID.match(stdout)
    assert run_id
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # drop the terminal's codes
    assert text.lstrip().startswith(f"run {run_id.group(1)}: ops-demo 1.2.0 started")
    # the live line: the action in flight and its elapsed seconds
    assert release.exists(), text  # the live line showed the action in flight
    assert re.search(r"passed   step 2 L\d+ MUST reach the bank  \S+, 3 attempts", text)
    assert "\x1b[" in shown  # it was drawn as a terminal, not printed as plain lines
