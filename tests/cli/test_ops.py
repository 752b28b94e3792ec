"""Operators' CLI: written help, ``--version``, run-id prefixes, ``sop runs`` filters and
``--last``, ``sop inspect`` as a timeline and ``--follow``. Real subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import COMMANDS, main
from engine.errors import UsageError
from engine.storage.journal import Journal
from engine.storage.runids import resolve_run_id
from tests.support.ops_project import env, make_project, run, sop


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def _run_id(proc: subprocess.CompletedProcess[str]) -> str:
    found = re.match(r"run ([0-9a-f]{32})", proc.stdout)
    assert found, proc.stdout + proc.stderr
    return found.group(1)


# -- help and version ----------------------------------------------------------------


def test_help_is_written_for_people(project: Path) -> None:
    proc = sop(project, "--help")
    assert proc.returncode == 0
    assert "Run Standard Operating Procedures written in markdown" in proc.stdout
    assert "exit codes: 0 success" in proc.stdout
    assert "argument parsing, dispatch" not in proc.stdout  # the module docstring
    run_help = sop(project, "run", "--help").stdout
    for option in ("--json", "--confirm", "--quiet", "NAME", "--param"):
        line = next(x for x in run_help.splitlines() if option in x and x.startswith("  "))
        assert len(line.split(None, 1)) == 2 or option == "NAME", line


def _entries_without_help(text: str) -> list[str]:
    """argparse help: an option or argument (indent 2) with no text after it (same line,
    after two spaces, or on the next, deeper-indented line)."""
    lines = text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not line.startswith("  ") or line.startswith("   "):
            continue
        entry = line.strip()
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if "  " not in entry and not following.startswith("   "):
            missing.append(entry)
    return missing


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_and_argument_has_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "options:" in text
    assert _entries_without_help(text) == [], text


def test_version(project: Path) -> None:
    proc = sop(project, "--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"sop \d+\.\d+\.\d+\S*\n", proc.stdout)


# -- run id prefixes -------------------------------------------------------------------


def test_unique_prefix_is_accepted_by_inspect_and_resume(project: Path) -> None:
    paused = run(project, "-p", "amount=20000", "--json", "-q")
    data = json.loads(paused.stdout)
    prefix = data["run_id"][:6]
    shown = sop(project, "inspect", prefix)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"run {data['run_id']}: ops-demo 1.2.0 paused")
    (project / "counts.txt").unlink(missing_ok=True)
    done = sop(project, "resume", prefix, "--confirm", data["pending"]["token"], "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run {data['run_id']}:")


def _start(journal: Journal, run_id: str) -> None:
    journal.start_run(
        run_id,
        sop="ops-demo",
        sop_path=None,
        version="1",
        content_hash=None,
        params={},
        handlers=[],
    )
    journal.flush()


def test_ambiguous_prefix_lists_the_candidates(project: Path) -> None:
    path = project / ".sop" / "journal.db"
    ids = ["abcd1" + "e" * 27, "abcd2" + "f" * 27, "abce3" + "e" * 27]  # no digit runs
    with Journal(path) as journal:
        for run_id in ids:
            _start(journal, run_id)
        assert resolve_run_id(journal, "abce") == ids[2]
        assert resolve_run_id(journal, ids[0]) == ids[0]
        with pytest.raises(UsageError, match="ambiguous"):
            resolve_run_id(journal, "abcd")
    proc = sop(project, "inspect", "abcd")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"sop: error: run id prefix 'abcd' is ambiguous: {ids[0]}, {ids[1]} (give more"
        " characters)\n"
    )
    short = sop(project, "resume", "abc")
    assert short.returncode == 2 and "4+ characters" in short.stderr
    unknown = sop(project, "inspect", "ffff")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "unknown run 'ffff'" in unknown.stderr


# -- sop runs ------------------------------------------------------------------------


def test_runs_filters_limit_duration_and_last(project: Path) -> None:
    first = _run_id(run(project, "-p", "amount=500"))
    failed = _run_id(run(project, "-p", "amount=13"))
    newest = _run_id(run(project, "-p", "amount=600"))

    listed = sop(project, "runs")
    lines = listed.stdout.splitlines()
    assert "DURATION" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == [newest, failed, first]  # newest first
    assert re.search(r"succeeded\s+ops-demo\s+1\.2\.0\s+\d+\.\d\ds\s", lines[1])

    def ids(*args: str) -> list[str]:
        proc = sop(project, "runs", "--json", *args)
        assert proc.returncode == 0, proc.stderr
        return [row["run_id"] for row in json.loads(proc.stdout)]

    assert ids("--status", "failed") == [failed]
    assert ids("--status", "succeeded", "--limit", "1") == [newest]
    assert ids("--sop", "other-sop") == []
    assert ids("--sop", "ops-demo", "--since", "1h") == [newest, failed, first]
    assert ids("--since", "2999-01-01") == []
    assert ids("--since", "2000-01-01T00:00:00") == [newest, failed, first]

    bad = sop(project, "runs", "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.startswith("sop: error: --since 'yesterday': expected an age")
    assert bad.stderr.count("\n") == 1

    far = sop(project, "runs", "--since", "99999999999d")
    assert far.returncode == 2 and far.stderr.count("\n") == 1, far.stderr
    zero = sop(project, "runs", "--limit", "0")
    assert zero.returncode == 2 and "--limit 0" in zero.stderr

    last = sop(project, "runs", "--last", "--status", "failed")
    assert last.returncode == 0
    assert last.stdout.startswith(f"run {failed}: ops-demo 1.2.0 failed")
    assert "timeline:" in last.stdout


# -- sop inspect: the timeline ---------------------------------------------------------


def test_inspect_reads_as_a_timeline(project: Path) -> None:
    paused = run(project, "-p", "amount=20000", "--json", "-q")
    data = json.loads(paused.stdout)
    run_id = data["run_id"]
    before = sop(project, "inspect", run_id[:8]).stdout
    assert "  +0.000s  run started" in before
    assert re.search(r"\+\d+\.\d{3}s  pending  guard L\d+ SHOULD require confirmation", before)
    assert "not run:\n" in before
    assert re.search(r"^  5 lines not reached: waiting for confirmation of line \d+$", before, re.M)
    assert "not reached" not in before.split("not run:")[0]  # one summary line, no list
    assert before.rstrip().endswith("status: paused")

    (project / "counts.txt").unlink(missing_ok=True)
    sop(project, "resume", run_id, "--confirm", data["pending"]["token"], "-q")
    text = sop(project, "inspect", run_id).stdout
    lines = text.split("timeline:\n", 1)[1].splitlines()
    offsets = [float(m.group(1)) for x in lines if (m := re.match(r"  \+(\d+\.\d{3})s  ", x))]
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    assert re.search(r"  run confirmed \(pid \d+\)", text)
    assert re.search(
        r"retry    step 2 L\d+ MUST reach the bank: attempt 1 failed: .*retrying in", text
    )
    assert re.search(r"passed   step 2 L\d+ MUST reach the bank  \d+\.\d{3}s, 3 attempts", text)
    assert re.search(r"passed   step 2 L\d+ MUST pay the amount  \d+\.\d{3}s$", text, re.M)
    assert re.search(r"^  skipped  MAY\s+L\d+\s+log the weather  \(no handler\)$", text, re.M)
    assert re.search(r"\+\d+\.\d{3}s  run finished: succeeded$", text, re.M)
    assert text.rstrip().endswith("status: succeeded")

    shape = json.loads(sop(project, "inspect", run_id, "--json").stdout)
    assert {"run", "result", "events", "records", "children"} <= set(shape)
    timeline = shape["timeline"]
    assert [t["seq"] for t in timeline] == [e["seq"] for e in shape["events"]]
    bank = [t for t in timeline if t["type"] == "action_finished" and t["attempts"] == 3]
    assert len(bank) == 1 and bank[0]["status"] == "passed"


def test_failed_action_shows_cause_in_the_timeline(project: Path) -> None:
    run_id = _run_id(run(project, "-p", "amount=13"))
    text = sop(project, "inspect", run_id).stdout
    assert re.search(
        r"failed   step 2 L\d+ MUST pay the amount  \S+  \(Your card was declined\)", text
    )
    assert "cause: SopFailure" in text
    assert re.search(r"\+\d+\.\d{3}s  run finished: failed: Your card was declined", text)


def _popen(project: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    environ = {**os.environ, **env(project, **extra)}
    environ.pop("SOP_JOURNAL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=project,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_follow_tails_a_running_run_until_it_ends(project: Path) -> None:
    release = project / "release"
    running = _popen(
        project,
        "run",
        "ops-demo",
        "--handlers",
        "ops_handlers",
        "-p",
        "amount=500",
        OPS_RELEASE=str(release),
    )
    assert running.stderr is not None
    first = running.stderr.readline()  # the run id comes first, while the run goes on
    found = re.match(r"run ([0-9a-f]{32}): ops-demo 1\.2\.0 started", first)
    assert found, first
    run_id = found.group(1)
    follow = _popen(project, "inspect", run_id[:10], "--follow", "--interval", "0.05")
    assert follow.stdout is not None
    head = [follow.stdout.readline() for _ in range(2)]
    assert head[0].startswith(f"run {run_id}: ops-demo 1.2.0 (following)")
    assert head[1].startswith("  +0.000s  run started")
    release.write_text("go")
    rest, _ = follow.communicate(timeout=60)
    running.communicate(timeout=60)
    assert follow.returncode == 0 == running.returncode
    assert re.search(r"passed   step 1 L\d+ SHOULD dawdle a little", rest)
    assert rest.rstrip().endswith("run finished: succeeded")


def test_follow_exits_with_the_run_code(project: Path) -> None:
    paused = run(project, "-p", "amount=20000", "--json", "-q")
    run_id = json.loads(paused.stdout)["run_id"]
    follow = sop(project, "inspect", run_id, "--follow")
    assert follow.returncode == 3
    assert "run paused" in follow.stdout
    failed = _run_id(run(project, "-p", "amount=13"))
    assert sop(project, "inspect", failed, "-f").returncode == 1


def test_follow_stops_when_the_process_is_gone(project: Path) -> None:
    release = project / "release"
    running = _popen(
        project,
        "run",
        "ops-demo",
        "--handlers",
        "ops_handlers",
        "-p",
        "amount=500",
        OPS_RELEASE=str(release),
    )
    assert running.stderr is not None
    first = running.stderr.readline()
    run_id = first.split()[1].rstrip(":")
    while "HANDLER hello" not in running.stderr.readline():
        pass
    running.kill()
    running.wait(timeout=60)
    follow = sop(project, "inspect", run_id, "--follow")
    assert follow.returncode == 1
    assert (
        f"interrupted (its process is gone); resume it with: sop resume {run_id}" in follow.stdout
    )
    shown = sop(project, "inspect", run_id).stdout  # the action it was cut off in
    assert re.search(
        r"started  step 1 L\d+ (MUST say hello|SHOULD dawdle a little)"
        r"  \(attempt 1; no outcome journaled\)",
        shown,
    ), shown
