"""What resume, confirmation and reporting trust is covered by the hash chain.

Editing ``runs.params`` of a crashed run used to pass `sop journal verify`, and resume
then charged the edited amount; raising ``confirmations.expires_at`` let an expired
token through. Every table is now checked against the chained events, resume and
confirmation act on the events only, and refuse a run that fails verification.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import SopError
from engine.storage.journal import Journal
from tests.support.cli import pythonpath, sop_cli

FIXTURES = Path(__file__).parents[1] / "fixtures"

SOP = """\
# Pay Out

**Version**: 1.0.0

## Overview

Charge, ask a person, pay out.

## Parameters

### Required

- **customer** (string): who
- **amount** (integer): how much, in cents

## Steps

### 1. Charge

**Actions**:
- MUST charge the customer

### 2. Confirm

**Actions**:
- MUST ask a person to confirm the payout

### 3. Pay out

**Actions**:
- MUST pay out
"""

HANDLERS = """\
import os

from engine.errors import ConfirmationRequired
from engine.binding.registry import action


def _effect(ctx, what):
    with open(os.environ["TRUST_EFFECTS"], "a") as fh:
        fh.write(f"{what} {ctx.params['customer']} {ctx.params['amount']}\\n")


@action("charge the customer")
def charge(ctx):
    _effect(ctx, "charge")


@action("ask a person to confirm the payout")
def ask(ctx):
    if not ctx.confirmed:
        raise ConfirmationRequired("confirm the payout", {"amount": ctx.params["amount"]})


@action("pay out")
def pay_out(ctx):
    _effect(ctx, "payout")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "pay-out.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "trust_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _sop(project: Path, *args: str, **extra: str) -> Any:
    env = {
        "TRUST_EFFECTS": str(project / "effects.txt"),
        "PYTHONPATH": pythonpath(project),
        "SOP_JOURNAL": str(project / "journal.db"),
        **extra,
    }
    drop = [] if "SOP_CRASH_AFTER" in extra else ["SOP_CRASH_AFTER"]
    return sop_cli(*args, cwd=project, env=env, drop=drop)


def _effects(project: Path) -> list[str]:
    path = project / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def _edit(project: Path, sql: str, *args: Any) -> None:
    with sqlite3.connect(project / "journal.db") as db:
        assert db.execute(sql, args).rowcount >= 1


def _line(fragment: str) -> int:
    return next(i for i, text in enumerate(SOP.splitlines(), 1) if fragment in text)


RUN = ("run", "pay-out", "--handlers", "trust_handlers", "-p", "customer=cus_A", "-p", "amount=500")


def test_edited_run_params_fail_verify_and_resume_refuses(project: Path) -> None:
    crash = f"action_finished:step1:action:L{_line('charge the customer')}"
    crashed = _sop(project, *RUN, SOP_CRASH_AFTER=crash)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    (run,) = json.loads(_sop(project, "runs", "--json").stdout)
    edited = json.dumps({"amount": 99999999, "customer": "cus_EVIL"})
    _edit(project, "UPDATE runs SET params=?", edited)

    verify = _sop(project, "journal", "verify")
    assert verify.returncode == 1
    assert f"run {run['run_id']}: runs.params differ from its chained events" in verify.stderr

    resumed = _sop(project, "resume", run["run_id"])
    assert resumed.returncode == 1
    assert resumed.stderr.count("\n") == 1 and "Traceback" not in resumed.stderr
    assert "fails verification (run" in resumed.stderr and "runs.params" in resumed.stderr
    assert _effects(project) == ["charge cus_A 500"]  # no handler ran
    inspect = _sop(project, "inspect", run["run_id"], "--json")
    shown = json.loads(inspect.stdout)["run"]["params"]
    assert shown == {"amount": 500, "customer": "cus_A"}  # reporting reads the chained copy


def test_an_edited_event_makes_resume_refuse(project: Path) -> None:
    crash = f"action_finished:step1:action:L{_line('charge the customer')}"
    assert _sop(project, *RUN, SOP_CRASH_AFTER=crash).returncode == -signal.SIGKILL
    (run,) = json.loads(_sop(project, "runs", "--json").stdout)
    _edit(
        project,
        "UPDATE events SET data=replace(data, '\"amount\":500', '\"amount\":99999')"
        " WHERE type='run_started'",
    )
    resumed = _sop(project, "resume", run["run_id"])
    assert resumed.returncode == 1 and resumed.stderr.count("\n") == 1
    assert "fails verification (seq 1: hash does not match" in resumed.stderr, resumed.stderr
    assert _effects(project) == ["charge cus_A 500"]


def test_a_raised_expiry_fails_verify_and_confirm_refuses(project: Path) -> None:
    paused = _sop(project, *RUN, "--json", SOP_CONFIRM_TTL_SECONDS="0.5")
    assert paused.returncode == 3, paused.stderr
    result = json.loads(paused.stdout)
    token, run_id = result["pending"]["token"], result["run_id"]
    time.sleep(1.0)  # the token has expired
    _edit(project, "UPDATE confirmations SET expires_at=?", time.time() + 3600)

    verify = _sop(project, "journal", "verify")
    assert verify.returncode == 1 and "expires_at differ from its chained events" in verify.stderr

    confirmed = _sop(project, "resume", run_id, "--confirm", token)
    assert confirmed.returncode == 1, confirmed.stdout
    assert confirmed.stderr.count("\n") == 1 and "fails verification" in confirmed.stderr
    through_run = _sop(project, *RUN, "--confirm", token)
    assert through_run.returncode == 1 and "confirmations table was edited" in through_run.stderr
    assert _effects(project) == ["charge cus_A 500"]  # never paid out


def test_confirmation_reads_the_chained_expiry(tmp_path: Path) -> None:
    """The expiry confirm checks comes from the chained event even if only the table
    lookup were consulted (``Journal.confirmation`` cross-checks the row)."""
    registry = engine.Registry()

    @registry.action("charge the customer")
    def charge(ctx: Any) -> None:
        pass

    @registry.action("ask a person to confirm the payout")
    def ask(ctx: Any) -> None:
        if not ctx.confirmed:
            raise engine.ConfirmationRequired("confirm", {"amount": ctx.params["amount"]})

    @registry.action("pay out")
    def pay_out(ctx: Any) -> None:
        pass

    (tmp_path / "pay-out.sop.md").write_text(SOP, encoding="utf-8")
    sop = engine.load(str(tmp_path / "pay-out.sop.md"))
    with Journal(tmp_path / "j.db") as journal:
        paused = engine.run(sop, {"customer": "c", "amount": 5}, registry=registry, journal=journal)
        assert paused.pending is not None
        with sqlite3.connect(tmp_path / "j.db") as db:
            db.execute("UPDATE confirmations SET expires_at=expires_at+3600")
        from engine.execution.confirm import lookup

        with pytest.raises(SopError, match="confirmations table was edited"):
            lookup(journal, paused.pending["token"])


def _chain(path: Path) -> Journal:
    journal = Journal(path)
    journal.start_run(
        "r1", sop="demo", sop_path=None, version="1", content_hash="h", params={}, handlers=[]
    )
    for n in range(4):
        journal.append("r1", "action_started", f"a{n}", raw={"idempotency_key": f"k{n}"})
        journal.add_record("r1", f"a{n}", "transaction", {"n": n})
    finished = {"result": {"status": "succeeded"}}
    journal.append("r1", "run_finished", None, finished, status="succeeded")
    return journal


def test_swapped_events_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with _chain(path) as journal:
        assert journal.verify() == []
        with sqlite3.connect(path) as db:
            a, b = db.execute(
                "SELECT seq, type, action_id, data FROM events WHERE type='record' LIMIT 2"
            ).fetchall()
            for (seq, *_), (_, type_, action_id, data) in ((a, b), (b, a)):
                db.execute(
                    "UPDATE events SET type=?, action_id=?, data=? WHERE seq=?",
                    (type_, action_id, data, seq),
                )
        assert f"seq {a[0]}: hash does not match the row's content (edited)" in journal.verify()


def test_reordered_records_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with _chain(path) as journal:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE records SET id = -id")
            db.execute("UPDATE records SET id = 10 + id")  # 1..4 -> 9..6: reversed
        problems = journal.verify()
        assert "record 8: out of order with its events (reordered)" in problems, problems


def test_deleted_events_and_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with _chain(path) as journal:
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM events WHERE seq = 3")
            (seq,) = db.execute("SELECT event_seq FROM records WHERE id = 3").fetchone()
            db.execute("DELETE FROM records WHERE id = 3")
            db.execute("DELETE FROM runs")
        problems = journal.verify()
        assert "seq 3: missing event(s) 3..3 (deleted)" in problems
        assert f"seq {seq}: record of run r1 has no records row (deleted)" in problems
        assert "run r1: its runs row is missing (deleted)" in problems


def _rewrite_chain(path: Path) -> None:
    """What someone with write access can do: edit a row and recompute every hash after."""
    from engine.storage.verify import GENESIS, row_hash

    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT seq, run_id, ts, type, action_id, data FROM events ORDER BY seq"
        ).fetchall()
        prev = GENESIS
        for seq, run_id, ts, type_, action_id, data in rows:
            if type_ == "action_started":
                data = data.replace("k0", "forged")
            digest = row_hash(prev, seq, run_id, ts, type_, action_id, data)
            db.execute(
                "UPDATE events SET data=?, prev_hash=?, hash=? WHERE seq=?",
                (data, prev, digest, seq),
            )
            prev = digest
        db.execute("UPDATE meta SET value=? WHERE key='head'", (f"{rows[-1][0]}:{prev}",))


def test_a_head_kept_outside_catches_a_recomputed_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _chain(path).close()
    head = sop_cli("journal", "head", "--journal", str(path), cwd=tmp_path)
    assert head.returncode == 0, head.stderr
    anchor = head.stdout.strip()
    seq, _, digest = anchor.partition(":")
    assert seq.isdigit() and len(digest) == 64
    ok = sop_cli("journal", "verify", "--head", anchor, "--journal", str(path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    _rewrite_chain(path)
    plain = sop_cli("journal", "verify", "--journal", str(path), cwd=tmp_path)
    assert plain.returncode == 0  # the documented limit: a whole chain recomputed
    anchored = sop_cli("journal", "verify", "--head", anchor, "--journal", str(path), cwd=tmp_path)
    assert anchored.returncode == 1
    assert f"seq {seq}: not the recorded head" in anchored.stderr


def test_a_journal_from_before_schema_versions_opens_verifies_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/fixtures/journal_v1 was written by the code before this change (commit
    a6dc1f8): one finished run and one killed after its first action."""
    shutil.copy(FIXTURES / "journal_v1" / "journal-v1.db", tmp_path / "journal.db")
    (tmp_path / "sops").mkdir()
    shutil.copy(FIXTURES / "journal_v1" / "legacy-demo.sop.md", tmp_path / "sops")
    monkeypatch.chdir(tmp_path)
    with sqlite3.connect(tmp_path / "journal.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() is None
    registry = engine.Registry()
    calls: list[str] = []
    for name in ("one", "two", "three"):

        def handler(ctx: Any, name: str = name) -> None:
            calls.append(f"{name} {ctx.params['note']}")

        registry.action(f"record step {name}")(handler)
    with Journal(tmp_path / "journal.db") as journal:
        assert journal.verify() == []
        crashed = next(row for row in journal.runs() if row.status == "running")
        result = engine.resume(crashed.run_id, registry=registry, journal=journal)
        assert result.ok, result.errors
        assert journal.verify() == []
    assert calls == ["two crashed", "three crashed"]
    from engine.storage.journal import SCHEMA_VERSION

    with sqlite3.connect(tmp_path / "journal.db") as db:
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "j.db").close()
    with sqlite3.connect(tmp_path / "j.db") as db:
        db.execute("PRAGMA user_version=99")  # where the version lives (issue #10)
    with pytest.raises(SopError, match="schema version 99; this sop-engine knows up to"):
        Journal(tmp_path / "j.db")
    assert os.path.exists(tmp_path / "j.db")
