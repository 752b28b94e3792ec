"""The journal: hash chain that detects edits and deletions, redaction; SQLite's WAL.

Tests taking ``location`` run on both backends (tests/storage/conftest.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine.storage.journal import Journal
from tests.support.cli import sop_cli
from tests.support.journal_sql import execute


def _journal(location: str | Path) -> Journal:
    journal = Journal(location)
    journal.start_run(
        "r1",
        sop="demo",
        sop_path=None,
        version="1.0",
        content_hash="h",
        params={"amount": 5, "note": "card 4242424242424242"},
        handlers=["mod"],
    )
    journal.append("r1", "action_started", "a1", raw={"idempotency_key": "k-1"})
    journal.append("r1", "action_finished", "a1", {"result": {"status": "passed"}})
    journal.add_record("r1", "a1", "transaction", {"card": "4242 4242 4242 4242", "cvv": "123"})
    return journal


def test_wal_mode_and_run_row(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.db")
    mode = sqlite3.connect(tmp_path / "j.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    row = journal.run("r1")
    assert row is not None and row.status == "running" and row.handlers == ["mod"]
    assert row.params == {"amount": 5, "note": "card 424242******4242"}
    assert [e.type for e in journal.events("r1")] == [
        "run_started",
        "action_started",
        "action_finished",
        "record",
    ]
    assert journal.events("r1")[1].data == {"idempotency_key": "k-1"}
    assert journal.verify() == []


def test_records_are_redacted_everywhere(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.db")
    assert journal.records("r1")[0]["data"] == {"card": "424242******4242"}
    raw = (tmp_path / "j.db").read_bytes() + (tmp_path / "j.db-wal").read_bytes()
    assert b"4242424242424242" not in raw and b"4242 4242 4242 4242" not in raw


def test_default_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "x" / "env.db"))
    with Journal() as journal:
        assert journal.path == tmp_path / "x" / "env.db"
    assert (tmp_path / "x" / "env.db").is_file()


def test_edit_detected(location: str) -> None:
    _journal(location).close()
    execute(location, """UPDATE events SET data='{"result":{"status":"failed"}}' WHERE seq=3""")
    problems = Journal(location).verify()
    assert problems and problems[0].startswith("seq 3: hash does not match")


def test_deleted_row_detected(location: str) -> None:
    _journal(location).close()
    execute(location, "DELETE FROM events WHERE seq=2")
    problems = Journal(location).verify()
    assert problems and problems[0].startswith("seq 2: missing")


def test_deleted_tail_detected(location: str) -> None:
    _journal(location).close()
    execute(location, "DELETE FROM events WHERE seq=4")
    problems = Journal(location).verify()
    assert problems and "deleted from the end" in problems[0]


def test_rehashed_edit_still_breaks_the_chain(location: str) -> None:
    """An editor who recomputes the edited row's own hash breaks the next row's prev_hash."""
    from engine.storage.verify import row_hash as _row_hash

    _journal(location).close()
    ((seq, run_id, ts, type_, action_id, prev),) = execute(
        location, "SELECT seq, run_id, ts, type, action_id, prev_hash FROM events WHERE seq=2"
    )
    data = '{"idempotency_key":"forged"}'
    digest = _row_hash(prev, seq, run_id, ts, type_, action_id, data)
    execute(location, "UPDATE events SET data=?, hash=? WHERE seq=2", (data, digest))
    problems = Journal(location).verify()
    assert problems and problems[0].startswith("seq 3: prev_hash does not match")


def test_confirmation_single_use(location: str) -> None:
    journal = _journal(location)
    journal.add_confirmation(
        "r1", "a2", token_hash="t" * 64, operation_hash="o" * 64, expires_at=1e12, data={}
    )
    assert journal.run("r1").status == "paused"  # type: ignore[union-attr]
    assert journal.use_confirmation("t" * 64) is True
    assert journal.use_confirmation("t" * 64) is False
    types = [e.type for e in journal.events("r1")]
    assert types[-2:] == ["action_pending", "confirmation_used"]
    assert journal.verify() == []


def _cli(tmp_path: Path, *args: str, journal: str = "") -> subprocess.CompletedProcess[str]:
    where = journal or str(tmp_path / "j.db")
    return sop_cli(*args, "--journal", where, cwd=tmp_path, timeout=60)


def test_cli_journal_verify(tmp_path: Path, location: str) -> None:
    _journal(location).close()
    ok = _cli(tmp_path, "journal", "verify", journal=location)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    execute(location, "UPDATE events SET type='action_skipped' WHERE seq=3")
    bad = _cli(tmp_path, "journal", "verify", journal=location)
    assert bad.returncode == 1
    assert "broken: seq 3:" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_journal_verify_missing_file(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "journal", "verify")
    assert proc.returncode == 2 and "no journal at" in proc.stderr
    assert not (tmp_path / "j.db").exists()


def test_two_writers_keep_one_chain(location: str) -> None:
    """Two connections appending at once (two `sop run`s on one journal): no fork, no gap."""
    first = Journal(location)
    second = Journal(location)
    for journal, run_id in ((first, "a"), (second, "b")):
        journal.start_run(
            run_id, sop="s", sop_path=None, version=None, content_hash=None, params={}, handlers=[]
        )

    def write(journal: Journal, run_id: str) -> None:
        for n in range(150):
            journal.append(run_id, "action_started", f"x{n}", raw={"n": n})
            journal.append(run_id, "action_finished", f"x{n}", {"n": n}, defer=True)
        journal.flush()

    threads = [
        threading.Thread(target=write, args=(first, "a")),
        threading.Thread(target=write, args=(second, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.verify() == []
    assert len(first.events("a")) == len(second.events("b")) == 301
    assert [e.data["n"] for e in first.events("a") if e.type == "action_finished"] == list(
        range(150)
    )


def _started(journal: Journal, run_id: str) -> None:
    journal.start_run(
        run_id, sop="s", sop_path=None, version=None, content_hash=None, params={}, handlers=[]
    )


def test_run_row_lands_with_the_runs_first_commit(location: str) -> None:
    """start_run costs no commit of its own: the row and run_started ride with the first
    action_started, so both are on disk before any handler runs."""
    journal = Journal(location)
    _started(journal, "r1")
    journal.append("r1", "plan", data={"skipped": []}, defer=True)
    assert execute(location, "SELECT count(*) FROM runs")[0][0] == 0
    journal.append("r1", "action_started", "a1", raw={"idempotency_key": "k"})
    ((first_seq, status),) = execute(location, "SELECT first_seq, status FROM runs")
    types = execute(location, "SELECT seq, type FROM events ORDER BY seq")
    assert status == "running"
    assert [t for _, t in types] == ["run_started", "plan", "action_started"]
    assert first_seq == types[0][0]
    assert [e.type for e in journal.events("r1")] == ["run_started", "plan", "action_started"]
    assert journal.verify() == []


def test_started_run_is_visible_to_its_own_journal_and_kept_at_close(location: str) -> None:
    journal = Journal(location)
    _started(journal, "r1")
    assert [r.run_id for r in journal.runs()] == ["r1"]  # reading commits what is queued
    _started(journal, "r2")
    journal.close()
    with Journal(location) as again:
        assert {r.run_id for r in again.runs()} == {"r1", "r2"}
        assert again.run("r2") is not None and again.verify() == []


def _database_pages(path: Path) -> int:
    """Pages in the main database file: only a checkpoint moves WAL frames there."""
    return path.stat().st_size // 4096


def test_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", checkpoint_every=20)
    _started(journal, "r1")
    before = _database_pages(tmp_path / "j.db")
    for n in range(200):
        journal.append("r1", "action_started", f"a{n}", raw={"pad": "x" * 500})
    deadline = time.monotonic() + 10
    while _database_pages(tmp_path / "j.db") <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _database_pages(tmp_path / "j.db") > before
    names = [t.name for t in threading.enumerate()]
    assert "sop-journal-checkpoint" in names
    journal.close()
    assert "sop-journal-checkpoint" not in [t.name for t in threading.enumerate()]


def test_no_checkpoint_below_the_thresholds(tmp_path: Path) -> None:
    """The control for the test above: without the background thread (and below SQLite's
    backstop) nothing reaches the database file."""
    journal = Journal(tmp_path / "j.db")
    _started(journal, "r1")
    journal.append("r1", "action_started", "a0")
    before = _database_pages(tmp_path / "j.db")
    for n in range(200):
        journal.append("r1", "action_started", f"a{n}", raw={"pad": "x" * 500})
    time.sleep(0.2)
    assert _database_pages(tmp_path / "j.db") == before
    assert "sop-journal-checkpoint" not in [t.name for t in threading.enumerate()]
    journal.close()


def test_a_run_id_started_twice_is_a_clear_error(location: str) -> None:
    """Refused when queued, so nothing is left behind to break the journal's next commit."""
    from engine.errors import SopError

    journal = Journal(location)
    _started(journal, "r1")
    with pytest.raises(SopError, match="run r1 already exists"):
        _started(journal, "r1")  # still queued
    journal.append_text("r1", "action_started", "a1", "{}")
    with pytest.raises(SopError, match="run r1 already exists"):
        _started(journal, "r1")  # committed
    journal.append_text("r1", "action_finished", "a1", "{}")
    journal.close()
    with Journal(location) as again:
        assert [e.type for e in again.events("r1")] == [
            "run_started",
            "action_started",
            "action_finished",
        ]
        assert again.verify() == []
