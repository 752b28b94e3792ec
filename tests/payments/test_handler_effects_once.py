"""A handler's own side effects (journal records, outbox mail) happen once per key.

The crash window: a real ``sop run`` is SIGKILLed after a handler returned and before its
``action_finished`` was committed (``SOP_CRASH_AFTER=handler_returned:ID``). ``sop resume``
runs that action again (its outcome was not journaled) with the same keys, so the
transaction record and the receipt it already made are not made a second time.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.execution.context import RunContext, Services
from engine.language.catalog import load
from engine.storage.journal import Journal
from handlers.payments.notify import Notifier
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP = "payment-processing"


def _action_id(text: str) -> str:
    return next(a.id for a in load(SOP).all_actions() if a.text.startswith(text))


def _customer(sandbox: Sandbox) -> str:
    """A customer with an email (so a receipt is sent) and a default Visa test card."""
    client = sandbox.client()
    customer = client.v1.customers.create({"name": "Ada", "email": "ada@example.invalid"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(customer.id)


def _sop(tmp_path: Path, sandbox: Sandbox, *args: str, crash: str | None = None) -> Any:
    env = {
        **sandbox.env(),
        "SOP_JOURNAL": str(tmp_path / "journal.db"),
        "SOP_OUTBOX": str(tmp_path / "outbox"),
    }
    if crash is not None:
        env["SOP_CRASH_AFTER"] = crash
    return sop_cli(*args, cwd=ROOT, env=env, drop=["SOP_CRASH_AFTER"])


@pytest.mark.parametrize(
    "line", ["update internal records with transaction details", "send receipt to customer"]
)
def test_killed_after_the_handler_returned_then_resumed_makes_each_effect_once(
    line: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    customer = _customer(sandbox)
    argv = ["run", SOP, "--json", "-p", "operation=charge", "-p", f"customer_id={customer}"]
    crashed = _sop(
        tmp_path,
        sandbox,
        *argv,
        "-p",
        "amount=2500",
        crash=f"handler_returned:{_action_id(line)}",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    listed = _sop(tmp_path, sandbox, "runs", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "interrupted"  # its process is gone

    resumed = _sop(tmp_path, sandbox, "resume", row["run_id"], "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"

    shown = json.loads(_sop(tmp_path, sandbox, "inspect", row["run_id"], "--json").stdout)
    records = shown["records"]
    assert [r["kind"] for r in records].count("transaction") == 1
    repeated = Counter(json.dumps([r["action_id"], r["kind"], r["data"]]) for r in records)
    assert [k for k, n in repeated.items() if n > 1] == []
    mail = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert [n.removeprefix(f"{row['run_id']}-").split("-")[0] for n in mail] == [
        "confirmation",
        "receipt",
    ]
    intents = sandbox.client().v1.payment_intents.list({"limit": 100}).data
    assert len([pi for pi in intents if pi.customer == customer]) == 1
    verified = _sop(tmp_path, sandbox, "journal", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _context(journal: Journal, run_id: str) -> RunContext:
    sop = load(SOP)
    action = next(a for a in sop.all_actions() if a.text.startswith("update internal records"))
    return RunContext(
        run_id=run_id,
        sop=sop,
        params={},
        state={},
        output={},
        action=action,
        services=Services(None, {}),
        log=lambda: logging.getLogger("test"),
        journal=journal,
        registry=None,
    )


def test_a_record_key_journaled_once_and_the_rerun_handler_records_nothing_twice(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "journal.db") as journal:
        assert journal.add_record("r1", "a1", "transaction", {"amount": 1}, key="k1") is True
        assert journal.add_record("r1", "a1", "transaction", {"amount": 1}, key="k1") is False
        assert journal.add_record("r1", "a1", "transaction", {"amount": 1}, key="k2") is True
        assert journal.add_record("r1", "a1", "transaction", {"amount": 1}) is True  # no key
        assert [r["key"] for r in journal.records("r1")] == ["k1", "k2", None]
        assert [e.type for e in journal.events("r1")].count("record") == 3

        # attempt 1 failed (recorded), attempt 2 was killed before it recorded anything
        killed = _context(journal, "r2")
        killed.record("audit", {"event": "attempt.failed", "attempt": 1})
        # resumed: attempt 1 succeeds (a different record: kept), two equal lines
        resumed = _context(journal, "r2")
        resumed.record("audit", {"event": "charge.executed"})
        resumed.record("note", {"n": 1})
        resumed.record("note", {"n": 1})
        # killed after the handler returned; resumed again: the same records, none kept
        again = _context(journal, "r2")
        again.record("audit", {"event": "charge.executed"})
        again.record("note", {"n": 1})
        again.record("note", {"n": 1})
        kept = [(r["kind"], r["data"]) for r in journal.records("r2")]
        assert kept == [
            ("audit", {"event": "attempt.failed", "attempt": 1}),
            ("audit", {"event": "charge.executed"}),
            ("note", {"n": 1}),
            ("note", {"n": 1}),
        ]
        assert journal.verify() == []


def test_a_record_row_whose_key_was_edited_fails_verification(tmp_path: Path) -> None:
    import sqlite3

    with Journal(tmp_path / "journal.db") as journal:
        journal.add_record("r1", "a1", "transaction", {"amount": 1}, key="k1")
    with sqlite3.connect(tmp_path / "journal.db") as db:
        db.execute("UPDATE records SET key='k2'")
    with Journal(tmp_path / "journal.db") as journal:
        assert journal.verify() == [
            "record 1: differs from its chained event 1 (edited)",
        ]


def test_notifier_send_once_per_key(tmp_path: Path) -> None:
    notifier = Notifier(outbox=tmp_path / "out")
    context = {"operation": "charge", "amount": 2500, "currency": "usd", "transaction_id": "pi_1"}
    context |= {"customer_name": "Ada", "card_last4": "4242", "description": ""}
    first = notifier.send("receipt", "ada@example.invalid", context, run_id="r1", key="k1")
    text = first.read_bytes()
    again = notifier.send(
        "receipt", "ada@example.invalid", {**context, "amount": 9}, run_id="r1", key="k1"
    )
    assert again == first and first.read_bytes() == text  # made before: not written again
    other = notifier.send("receipt", "ada@example.invalid", context, run_id="r1", key="k2")
    assert other != first
    assert sorted(os.listdir(tmp_path / "out")) == sorted([first.name, other.name])
    assert b"Message-ID: <k1@sop-engine.invalid>" in text
    fraud = {"sop": SOP, "run_id": "r1", "condition": "Fraud detected", "procedure": "escalate"}
    fraud |= {"operation": "charge", "customer": "cus_1", "amount": 5, "reason": "flagged"}
    escalated = notifier.escalate(fraud, run_id="r1", key="k3")
    assert notifier.escalate(fraud, run_id="r1", key="k3") == escalated
    assert len(os.listdir(tmp_path / "out")) == 3
