"""Tampering: edit every table of a journal, delete or reorder rows; verify and resume notice.

One journal holds a succeeded charge, a charge killed before its Stripe call (``running``)
and a refund paused for confirmation. Each scenario edits a copy of it with plain SQL, as
someone with write access to the file would, then: ``sop journal verify`` (given the head
kept outside, ``sop journal head``) must report it and ``sop resume`` of the affected run
must refuse (and call nothing). Scenarios that fail
on main before i9-journal: every table outside ``events`` (defect 4).
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from engine.binding.registry import Registry
from engine.execution.runner import run
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.standing_proof import ROOT, figure, new_customer, sop_inproc

SOP = "payment-processing"
Edit = Callable[[sqlite3.Connection, dict[str, str]], None]


def _swap_events(db: sqlite3.Connection, ids: dict[str, str]) -> None:
    a, b = db.execute(
        "SELECT seq FROM events WHERE run_id=? ORDER BY seq LIMIT 2 OFFSET 3", (ids["crashed"],)
    ).fetchall()
    db.execute("UPDATE events SET seq=-1 WHERE seq=?", (a[0],))
    db.execute("UPDATE events SET seq=? WHERE seq=?", (a[0], b[0]))
    db.execute("UPDATE events SET seq=? WHERE seq=-1", (b[0],))


def _edit_params(db: sqlite3.Connection, ids: dict[str, str]) -> None:
    (text,) = db.execute("SELECT params FROM runs WHERE run_id=?", (ids["crashed"],)).fetchone()
    params = json.loads(text)
    params.update(amount=99_999, customer_id=ids["other"])
    db.execute("UPDATE runs SET params=? WHERE run_id=?", (json.dumps(params), ids["crashed"]))


#: name -> (edit, the run whose resume must refuse: the paused one is resumed with its token)
SCENARIOS: dict[str, tuple[Edit, str]] = {
    "runs.params (amount, customer)": (_edit_params, "crashed"),
    "runs.status": (
        lambda db, ids: db.execute(
            "UPDATE runs SET status='running' WHERE run_id=?", (ids["done"],)
        ),
        "done",
    ),
    "runs row deleted": (
        lambda db, ids: db.execute("DELETE FROM runs WHERE run_id=?", (ids["crashed"],)),
        "crashed",
    ),
    "events.data": (
        lambda db, ids: db.execute(
            "UPDATE events SET data=replace(data, '\"passed\"', '\"skipped\"')"
            " WHERE run_id=? AND type='action_finished'",
            (ids["crashed"],),
        ),
        "crashed",
    ),
    "events row deleted": (
        lambda db, ids: db.execute(
            "DELETE FROM events WHERE seq=(SELECT seq FROM events WHERE run_id=?"
            " AND type='action_finished' LIMIT 1 OFFSET 2)",
            (ids["crashed"],),
        ),
        "crashed",
    ),
    "events rows reordered": (_swap_events, "crashed"),
    "events tail deleted": (
        lambda db, ids: db.execute(
            "DELETE FROM events WHERE seq > (SELECT max(seq) - 3 FROM events)"
        ),
        "crashed",
    ),
    "records.data": (
        lambda db, ids: db.execute(
            "UPDATE records SET data=replace(data, 'charge', 'refund') WHERE run_id=?",
            (ids["crashed"],),
        ),
        "crashed",
    ),
    "records row deleted": (
        lambda db, ids: db.execute("DELETE FROM records WHERE run_id=?", (ids["crashed"],)),
        "crashed",
    ),
    "confirmations.expires_at": (
        lambda db, ids: db.execute("UPDATE confirmations SET expires_at=expires_at + 86400 * 365"),
        "paused",
    ),
    "meta head": (
        lambda db, ids: db.execute(
            "UPDATE meta SET value='1:' || substr(value, 3) WHERE key='head'"
        ),
        "crashed",
    ),
}


#: Edits only the chain head kept outside the database reveals (the run's own rows are
#: intact): ``verify --head`` must report them; resume of the run cannot know.
ONLY_WITH_HEAD = ("events tail deleted", "meta head")


def _build(sandbox: Sandbox, registry: Registry, proof_env: Path) -> tuple[Path, dict[str, str]]:
    db = proof_env / "pristine.db"
    customer = new_customer(sandbox, "tamper@example.invalid")
    ids = {"other": new_customer(sandbox, "other@example.invalid")}
    with Journal(db) as jr:
        done = run(
            SOP,
            {"operation": "charge", "customer_id": customer, "amount": 20_000},
            registry=registry,
            journal=jr,
        )
        assert done.status.value == "succeeded", done.errors
        ids["done"] = done.run_id
        pi = str(done.output["transaction_id"])
        paused = run(
            SOP,
            {
                "operation": "refund",
                "customer_id": customer,
                "payment_intent": pi,
                "amount": 15_000,
            },
            registry=registry,
            journal=jr,
        )
        assert paused.status.value == "paused" and paused.pending
        ids["paused"], ids["token"] = paused.run_id, paused.pending["token"]
    crashed = sop_cli(
        "run",
        SOP,
        "-p",
        "operation=charge",
        "-p",
        f"customer_id={customer}",
        "-p",
        "amount=700",
        "--journal",
        str(db),
        cwd=ROOT,
        env={**sandbox.env(), "SOP_CRASH_AFTER": "action_finished:step2:check:L78"},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    with closing(sqlite3.connect(db)) as conn:
        (ids["crashed"],) = conn.execute(
            "SELECT run_id FROM runs WHERE status='running'"
        ).fetchone()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, ids


def test_every_edit_is_reported_and_refused(
    sandbox: Sandbox, payments_registry: Registry, proof_env: Path
) -> None:
    started = time.perf_counter()
    pristine, ids = _build(sandbox, payments_registry, proof_env)
    code, _, err = sop_inproc("journal", "verify", "--journal", str(pristine))
    assert code == 0, err
    # the chain head kept outside the database (`sop journal head`), where the engine has it
    code, out, _ = sop_inproc("journal", "head", "--journal", str(pristine))
    head = ["--head", out.strip()] if code == 0 else []
    table: dict[str, str] = {}
    missed: list[str] = []
    for name, (edit, target) in SCENARIOS.items():
        db = proof_env / f"tampered-{len(table)}.db"
        shutil.copy(pristine, db)
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            edit(conn, ids)
        code, out, err = sop_inproc("journal", "verify", *head, "--journal", str(db))
        reported = code != 0
        before = len(sandbox.requests())
        confirm = ["--confirm", ids["token"]] if target == "paused" else []
        rcode, _, rerr = sop_inproc("resume", ids[target], *confirm, "--journal", str(db))
        refused = rcode != 0 and len(sandbox.requests()) == before
        table[name] = (
            f"verify {'reports' if reported else 'PASSES'}, "
            f"resume {'refuses' if refused else 'RUNS'} ({target} run)"
        )
        if name in ONLY_WITH_HEAD:  # what a run's own rows cannot show: verify --head must
            refused = True
        if not (reported and refused):
            missed.append(
                f"{name}: {table[name]}: {(err or out).strip()[:80]} / {rerr.strip()[:80]}"
            )
    figure(
        "tampering",
        scenarios=len(SCENARIOS),
        seconds=round(time.perf_counter() - started, 1),
        **table,
    )
    assert missed == [], "\n".join(missed)
