"""A card number and a CVV typed into a description never leave the engine.

A real ``sop run`` subprocess charges a sandbox customer with a description that
holds a test card number and a CVV. Neither may appear in stdout/stderr (text and
JSON), the journal database files (including the WAL), ``sop inspect``, the
outbox, or the request Stripe received.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.context import Services
from engine.registry import load_handlers
from handlers import payments
from handlers.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
CARD = "4242 4242 4242 4242"
SECRETS = (CARD, CARD.replace(" ", ""), "4242-4242-4242-4242", "cvv 123")


def _customer() -> str:
    registry = load_handlers(["handlers.payments"], project_dir=ROOT)
    services = Services(None, registry.services())

    class _Ctx:
        sop = None

    services.bind(_Ctx())  # type: ignore[arg-type]
    return payments.make_customer(services, "cus_REDACT")


def _leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [s for s in SECRETS if s in text]


def test_card_number_and_cvv_never_reach_logs_journal_outbox_or_output(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    customer = _customer()
    journal = tmp_path / "journal.db"
    outbox = tmp_path / "outbox"
    env: dict[str, Any] = {**os.environ, **sandbox.env(), "SOP_OUTBOX": str(outbox)}
    description = f"Card {CARD} exp 12/30 cvv 123 from the phone call"
    runs = []
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "run",
                "payment-processing",
                "-p",
                "operation=charge",
                "-p",
                f"customer_id={customer}",
                "-p",
                "amount=2500",
                "-p",
                f"description={description}",
                "--journal",
                str(journal),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert _leaks(done.stdout + done.stderr) == []
        runs.append(done.stdout)
    run_id = runs[0].split()[1].rstrip(":")
    inspected = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "inspect",
            run_id,
            "--journal",
            str(journal),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert inspected.returncode == 0, inspected.stderr
    assert "424242" in inspected.stdout  # the masked form (first 6 ... last 4) is what is kept
    assert _leaks(inspected.stdout) == []
    db_files = [p for p in tmp_path.iterdir() if p.name.startswith("journal.db")]
    assert db_files
    for path in db_files:
        assert _leaks(path.read_bytes()) == [], path
    messages = list(outbox.glob("*.eml"))
    assert len(messages) == 4  # confirmation + receipt, twice
    for path in messages:
        assert _leaks(path.read_bytes()) == [], path
    posted = [
        r
        for r in sandbox.requests()
        if r["path"] == "/v1/payment_intents" and r["method"] == "POST"
    ]
    assert len(posted) == 2
    for intent in sandbox.client().v1.payment_intents.list({"limit": 10}).data:
        assert _leaks(str(intent.to_dict())) == []
