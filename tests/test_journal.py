"""The journal: real SQLite, WAL, hash chain that detects edits and deletions, redaction."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.journal import Journal


def _journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "j.db")
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
    journal = _journal(tmp_path)
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
    journal = _journal(tmp_path)
    assert journal.records("r1")[0]["data"] == {"card": "424242******4242"}
    raw = (tmp_path / "j.db").read_bytes() + (tmp_path / "j.db-wal").read_bytes()
    assert b"4242424242424242" not in raw and b"4242 4242 4242 4242" not in raw


def test_default_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "x" / "env.db"))
    with Journal() as journal:
        assert journal.path == tmp_path / "x" / "env.db"
    assert (tmp_path / "x" / "env.db").is_file()


def test_edit_detected(tmp_path: Path) -> None:
    _journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("""UPDATE events SET data='{"result":{"status":"failed"}}' WHERE seq=3""")
    db.commit()
    problems = Journal(tmp_path / "j.db").verify()
    assert problems and problems[0].startswith("seq 3: hash does not match")


def test_deleted_row_detected(tmp_path: Path) -> None:
    _journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("DELETE FROM events WHERE seq=2")
    db.commit()
    problems = Journal(tmp_path / "j.db").verify()
    assert problems and problems[0].startswith("seq 2: missing")


def test_deleted_tail_detected(tmp_path: Path) -> None:
    _journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("DELETE FROM events WHERE seq=4")
    db.commit()
    problems = Journal(tmp_path / "j.db").verify()
    assert problems and "deleted from the end" in problems[0]


def test_rehashed_edit_still_breaks_the_chain(tmp_path: Path) -> None:
    """An editor who recomputes the edited row's own hash breaks the next row's prev_hash."""
    from engine.journal import _row_hash

    _journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "j.db")
    seq, run_id, ts, type_, action_id, prev = db.execute(
        "SELECT seq, run_id, ts, type, action_id, prev_hash FROM events WHERE seq=2"
    ).fetchone()
    data = '{"idempotency_key":"forged"}'
    digest = _row_hash(prev, seq, run_id, ts, type_, action_id, data)
    db.execute("UPDATE events SET data=?, hash=? WHERE seq=2", (data, digest))
    db.commit()
    problems = Journal(tmp_path / "j.db").verify()
    assert problems and problems[0].startswith("seq 3: prev_hash does not match")


def test_confirmation_single_use(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.add_confirmation(
        "r1", "a2", token_hash="t" * 64, operation_hash="o" * 64, expires_at=1e12, data={}
    )
    assert journal.run("r1").status == "paused"  # type: ignore[union-attr]
    assert journal.use_confirmation("t" * 64) is True
    assert journal.use_confirmation("t" * 64) is False
    types = [e.type for e in journal.events("r1")]
    assert types[-2:] == ["action_pending", "confirmation_used"]
    assert journal.verify() == []


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "--journal", str(tmp_path / "j.db")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_cli_journal_verify(tmp_path: Path) -> None:
    _journal(tmp_path).close()
    ok = _cli(tmp_path, "journal", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("UPDATE events SET type='action_skipped' WHERE seq=3")
    db.commit()
    bad = _cli(tmp_path, "journal", "verify")
    assert bad.returncode == 1
    assert "broken: seq 3:" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_journal_verify_missing_file(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "journal", "verify")
    assert proc.returncode == 2 and "no journal at" in proc.stderr
    assert not (tmp_path / "j.db").exists()


def test_two_writers_keep_one_chain(tmp_path: Path) -> None:
    """Two connections appending at once (two `sop run`s on one journal): no fork, no gap."""
    import threading

    first = Journal(tmp_path / "shared.db")
    second = Journal(tmp_path / "shared.db")
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
