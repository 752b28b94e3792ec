"""Reject and cancel through the real ``sop`` command against the local Stripe sandbox.

A refund above the threshold pauses; ``sop reject`` ends it: no refund reaches the
sandbox, the run is ``rejected`` (exit 1), the journal says who and why, and the token
printed at the pause no longer confirms anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.standing_proof import new_customer

ROOT = Path(__file__).resolve().parents[2]


def _refunds(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        r for r in sandbox.requests() if r.get("method") == "POST" and r["path"] == "/v1/refunds"
    ]


def test_a_rejected_refund_never_reaches_stripe(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    journal = str(tmp_path / "journal.db")

    def sop(*args: str) -> Any:
        return sop_cli(*args, "--journal", journal, cwd=ROOT, env=env)

    customer = new_customer(sandbox)
    charge = sop("run", "payment-processing", "-p", "operation=charge", "-p",
                 f"customer_id={customer}", "-p", "amount=20000", "--json")  # fmt: skip
    assert charge.returncode == 0, charge.stderr
    pi = json.loads(charge.stdout)["output"]["transaction_id"]
    refund = sop("run", "payment-processing", "-p", "operation=refund", "-p",
                 f"customer_id={customer}", "-p", f"payment_intent={pi}", "-p", "amount=15000",
                 "--json")  # fmt: skip
    assert refund.returncode == 3, refund.stderr
    paused = json.loads(refund.stdout)
    run_id, token = paused["run_id"], paused["pending"]["token"]

    rejected = sop("reject", run_id, "--reason", "customer withdrew the request", "--as", "alice")
    assert rejected.returncode == 1, rejected.stderr
    assert f"run {run_id}: payment-processing" in rejected.stdout
    assert "rejected" in rejected.stdout.splitlines()[0]
    assert "rejected by alice: customer withdrew the request" in rejected.stdout

    again = sop("resume", run_id, "--confirm", token)
    assert again.returncode == 1
    assert again.stderr == f"sop: error: run {run_id} was rejected; it cannot be resumed" \
        " (start a new run)\n"  # fmt: skip
    assert _refunds(sandbox) == []

    inspected = json.loads(sop("inspect", run_id, "--json").stdout)
    assert inspected["run"]["status"] == inspected["result"]["status"] == "rejected"
    decided = [e["data"] for e in inspected["events"] if e["type"] == "confirmation_used"]
    assert [(d["by"], d["decision"], d["reason"]) for d in decided] == [
        ("alice", "rejected", "customer withdrew the request")
    ]
    assert sop("journal", "verify").returncode == 0


def test_confirm_journals_the_os_user_and_cancel_refuses_a_finished_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox"), "LOGNAME": "frank",
           "USER": "frank"}  # fmt: skip
    journal = str(tmp_path / "journal.db")

    def sop(*args: str) -> Any:
        return sop_cli(*args, "--journal", journal, cwd=ROOT, env=env)

    customer = new_customer(sandbox)
    charge = sop("run", "payment-processing", "-p", "operation=charge", "-p",
                 f"customer_id={customer}", "-p", "amount=20000", "--json")  # fmt: skip
    pi = json.loads(charge.stdout)["output"]["transaction_id"]
    refund = sop("run", "payment-processing", "-p", "operation=refund", "-p",
                 f"customer_id={customer}", "-p", f"payment_intent={pi}", "-p", "amount=15000",
                 "--json")  # fmt: skip
    paused = json.loads(refund.stdout)
    done = sop("resume", paused["run_id"], "--confirm", paused["pending"]["token"])
    assert done.returncode == 0, done.stderr
    assert len(_refunds(sandbox)) == 1
    inspected = json.loads(sop("inspect", paused["run_id"], "--json").stdout)
    decided = [e["data"] for e in inspected["events"] if e["type"] == "confirmation_used"]
    assert [(d["by"], d["decision"]) for d in decided] == [("frank", "confirmed")]

    late = sop("cancel", paused["run_id"])
    assert late.returncode == 1 and late.stderr.count("\n") == 1
    assert "already succeeded; nothing to cancel" in late.stderr
    missing = sop("reject", "0" * 32, "--reason", "x")
    assert missing.returncode == 2 and "unknown run" in missing.stderr
    assert os.path.exists(journal)
