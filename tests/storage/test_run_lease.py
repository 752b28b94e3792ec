"""One process owns a run at a time: the lease in the journal.

Two `sop resume` of one crashed run used to both execute (both saw a dead pid): every
action after the crash ran twice. Now the first takes the run's lease and the second is
refused, naming the owner; a lease whose holder died is taken over.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.storage.journal import Journal
from tests.support.cli import pythonpath, sop_cli
from tests.support.journal_sql import execute

HANDLERS = """\
import os
import time
from pathlib import Path

from engine.binding.registry import action

EFFECTS = Path(os.environ["LEASE_EFFECTS"])
MARKER = Path(os.environ["LEASE_MARKER"])


@action("append effect {n:d}")
def append(ctx, n):
    if n == 2:  # the first action a resume runs: held until the test lets it go
        with MARKER.with_suffix(".gate").open("a") as fh:
            fh.write(f"{os.getpid()}\\n")
        while not MARKER.exists():
            time.sleep(0.02)
    with EFFECTS.open("a") as fh:
        fh.write(f"{n} {ctx.idempotency_key()}\\n")
"""


def _sop_text(actions: int) -> str:
    lines = "\n".join(f"- MUST append effect {n}" for n in range(1, actions + 1))
    return (
        "# Many Effects\n\n**Version**: 1.0.0\n\n## Overview\n\nSide effects in a row.\n\n"
        f"## Steps\n\n### 1. Effects\n\n**Actions**:\n{lines}\n"
    )


def _project(tmp_path: Path, actions: int) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "many-effects.sop.md").write_text(_sop_text(actions), encoding="utf-8")
    (tmp_path / "lease_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _env(project: Path, journal: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOP_CRASH_AFTER"}
    env.update(
        LEASE_EFFECTS=str(project / "effects.txt"),
        LEASE_MARKER=str(project / "marker"),
        PYTHONPATH=pythonpath(project),
        SOP_JOURNAL=journal or str(project / "journal.db"),
    )
    env.update(extra)
    return env


def _effects(project: Path) -> list[int]:
    path = project / "effects.txt"
    return [int(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []


def _crashed_run(project: Path, journal: str = "") -> str:
    line = _sop_text(3).splitlines().index("- MUST append effect 1") + 1
    crashed = sop_cli(
        "run",
        "many-effects",
        "--handlers",
        "lease_handlers",
        cwd=project,
        env=_env(project, journal, SOP_CRASH_AFTER=f"action_finished:step1:action:L{line}"),
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    listed = sop_cli("runs", "--json", cwd=project, env=_env(project, journal))
    (run,) = json.loads(listed.stdout)
    assert run["status"] == "interrupted"  # its process is gone
    return str(run["run_id"])


@pytest.mark.parametrize("actions", [3, 300])
def test_two_resumes_at_once_run_the_crashed_run_once(
    tmp_path: Path, actions: int, location: str
) -> None:
    """On both backends (``location``): a crashed run, resumed by two processes at once."""
    project = _project(tmp_path, actions)
    where = location if "postgres" in location else str(project / "journal.db")
    run_id = _crashed_run(project, where)
    assert _effects(project) == [1]
    crashed_pid = json.loads(
        sop_cli("inspect", run_id, "--json", cwd=project, env=_env(project, where)).stdout
    )["events"][0]["data"]["pid"]

    command = [sys.executable, "-m", "engine", "resume", run_id]
    procs = [
        subprocess.Popen(
            command,
            cwd=project,
            env=_env(project, where),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        gate = project / "marker.gate"
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither resume ended"
            inside = set(gate.read_text().split()) if gate.exists() else set()
            assert len(inside) < 2, "both resumes are executing the run"
            time.sleep(0.02)
        refused = next(p for p in procs if p.poll() is not None)
        owner = next(p for p in procs if p is not refused)
        out, err = refused.communicate()
        assert refused.returncode == 1, out + err
        assert err.count(b"\n") == 1 and b"Traceback" not in err
        expected = f"run {run_id} is owned by pid {owner.pid}@{socket.gethostname()} since "
        assert expected.encode() in err, err
        (project / "marker").touch()
        out, err = owner.communicate(timeout=120)
        assert owner.returncode == 0, out + err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    counts = Counter(_effects(project))
    assert sorted(counts) == list(range(1, actions + 1))
    assert set(counts.values()) == {1}, [n for n, c in counts.items() if c > 1]
    inspect = sop_cli("inspect", run_id, "--json", cwd=project, env=_env(project, where))
    events = json.loads(inspect.stdout)["events"]
    (resumed,) = [e for e in events if e["type"] == "run_resumed"]
    assert resumed["data"]["took_over"].startswith(f"pid {crashed_pid}@")  # the killed run's
    with Journal(where) as journal:
        assert journal.verify() == []
    assert execute(where, "SELECT * FROM leases") == []  # released by the run's end


def _journal_with_run(path: str, run_id: str = "r1") -> Journal:
    journal = Journal(path)
    journal.start_run(
        run_id,
        sop="demo",
        sop_path=None,
        version="1",
        content_hash="h",
        params={},
        handlers=[],
    )
    journal.append(run_id, "action_started", "a1", raw={"idempotency_key": "k"})
    journal.release_lease(run_id)  # as if its process had gone
    return journal


def _set_lease(location: str, run_id: str, pid: int, host: str, expires_in: float) -> None:
    """Another process's lease, written behind the journal's back (either backend)."""
    now = time.time()
    execute(
        location,
        "INSERT INTO leases(run_id, token, pid, host, since, expires_at) VALUES (?,?,?,?,?,?)"
        " ON CONFLICT(run_id) DO UPDATE SET token=excluded.token, pid=excluded.pid,"
        " host=excluded.host, since=excluded.since, expires_at=excluded.expires_at",
        (run_id, "someone-elses-token", pid, host, now - 5, now + expires_in),
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_owner_on_this_host_is_taken_over_at_once(location: str) -> None:
    path = location
    with _journal_with_run(path) as journal:
        pid = _dead_pid()
        _set_lease(path, "r1", pid, socket.gethostname(), expires_in=3600)
        previous = journal.acquire_lease("r1")
        assert previous is not None and previous.pid == pid
        mine = journal.lease("r1")
        assert mine is not None and mine.pid == os.getpid()


def test_a_live_owner_is_respected_and_named(location: str) -> None:
    from engine.storage.lease import LeaseHeld

    path = location
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with _journal_with_run(path) as journal:
            _set_lease(path, "r1", sleeper.pid, socket.gethostname(), expires_in=-10)
            with pytest.raises(LeaseHeld, match=rf"owned by pid {sleeper.pid}@"):
                journal.acquire_lease("r1")  # expired on paper, but its process is alive here
            row = journal.lease("r1")
            assert row is not None and row.pid == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


def test_another_hosts_lease_is_taken_over_only_after_it_expired(location: str) -> None:
    from engine.storage.lease import LeaseHeld

    path = location
    with _journal_with_run(path) as journal:
        _set_lease(path, "r1", 4242, "elsewhere", expires_in=60)
        with pytest.raises(LeaseHeld, match="owned by pid 4242@elsewhere since "):
            journal.acquire_lease("r1")
        _set_lease(path, "r1", 4242, "elsewhere", expires_in=-1)
        previous = journal.acquire_lease("r1")
        assert previous is not None and previous.host == "elsewhere"


def test_the_heartbeat_renews_and_a_lost_lease_stops_the_run(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.storage.lease import LeaseLost

    monkeypatch.setenv("SOP_LEASE_SECONDS", "0.3")
    path = location
    with _journal_with_run(path) as journal:
        journal.acquire_lease("r1")
        first = journal.lease("r1")
        time.sleep(0.5)
        later = journal.lease("r1")
        assert first is not None and later is not None
        assert later.token == first.token and later.expires_at > first.expires_at
        _set_lease(path, "r1", 4242, "elsewhere", expires_in=60)  # taken over behind our back
        deadline = time.monotonic() + 5
        with pytest.raises(LeaseLost, match="lost its lease"):
            while time.monotonic() < deadline:
                journal.append("r1", "action_started", "a2", raw={"idempotency_key": "k2"})
                time.sleep(0.05)


def test_a_running_sop_run_owns_its_run_from_its_first_commit(tmp_path: Path) -> None:
    """`sop resume` of a run whose `sop run` is alive (inside a handler) is refused, naming
    that process; the lease is gone once the run ended."""
    project = _project(tmp_path, 3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "run",
            "many-effects",
            "--handlers",
            "lease_handlers",
        ],
        cwd=project,
        env=_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project / "marker.gate").exists():  # inside action 2, held
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (run,) = json.loads(sop_cli("runs", "--json", cwd=project, env=_env(project)).stdout)
        refused = sop_cli("resume", run["run_id"], cwd=project, env=_env(project))
        assert refused.returncode == 1
        assert f"is owned by pid {proc.pid}@{socket.gethostname()}" in refused.stderr
        (project / "marker").touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _effects(project) == [1, 2, 3]
    with sqlite3.connect(project / "journal.db") as db:
        assert db.execute("SELECT * FROM leases").fetchall() == []
