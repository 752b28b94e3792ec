"""A card number and a CVV typed into a description never leave the engine.

A real ``sop run`` subprocess charges a sandbox customer with a description that
holds a test card number and a CVV. Neither may appear in stdout/stderr (text and
JSON), the journal database files (including the WAL), ``sop inspect``, the
outbox, or the request Stripe received.
"""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.standing_proof import new_customer

ROOT = Path(__file__).resolve().parents[2]
CARD = "4242 4242 4242 4242"
SECRETS = (CARD, CARD.replace(" ", ""), "4242-4242-4242-4242", "cvv 123")


def _leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [s for s in SECRETS if s in text]


def test_card_number_and_cvv_never_reach_logs_journal_outbox_or_output(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    customer = new_customer(sandbox)
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
                "engine.cli.main",
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
            "engine.cli.main",
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


#: CVCs written every way a person or a paste writes them, each with its own digits.
CVCS = {
    '{"cvc": "9871", "number": "4242 4242 4242 4242"}': "9871",
    "cvc=6543": "6543",
    "cvv: 3217": "3217",
    "security code 2468": "2468",
    "CVV is 1357": "1357",
    '"cvc":8642': "8642",
    "card verification value 7531": "7531",
}
#: A CVC's digits after its name, in any encoding a store or output may give it
#: (quotes, escaped quotes, JSON-in-JSON): the name, up to 24 non-digits, the digits.
_CVC_NEAR_NAME = re.compile(
    r"(?i)(cvc|cvv|security code|card verification value)[^0-9]{0,24}("
    + "|".join(CVCS.values())
    + r")(?![0-9])"
)


def _cvc_leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [m.group(0) for m in _CVC_NEAR_NAME.finditer(text)] + _leaks(text)


def _mail_texts(path: Path) -> list[str]:
    """The raw message and every decoded part (a body may be base64 or quoted-printable)."""
    message = email.message_from_bytes(path.read_bytes())
    texts = [path.read_bytes().decode("utf-8", "replace")]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", "replace"))
    return texts


def test_cvc_in_every_syntax_never_reaches_journal_outbox_output_or_stripe(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Issue 9, defect 7: ``description={"cvc": "987", ...}`` used to be stored as is."""
    customer = new_customer(sandbox)
    journal = tmp_path / "journal.db"
    outbox = tmp_path / "outbox"
    env = {**sandbox.env(), "SOP_OUTBOX": str(outbox)}
    description = "; ".join(CVCS)
    assert len(description) <= 500
    common = ["--journal", str(journal)]
    params = [
        *("-p", "operation=charge", "-p", f"customer_id={customer}", "-p", "amount=2500"),
        *("-p", f"description={description}"),
    ]
    outputs = []
    for extra in ([], ["--json"]):
        done = sop_cli("run", "payment-processing", *params, *common, *extra, cwd=ROOT, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout + done.stderr)
    run_id = json.loads(done.stdout)["run_id"]  # the --json run's stdout (progress: stderr)
    for extra in ([], ["--json"]):
        shown = sop_cli("inspect", run_id, *common, *extra, cwd=ROOT, env=env)
        assert shown.returncode == 0, shown.stderr
        outputs.append(shown.stdout + shown.stderr)
    for text in outputs:
        assert _cvc_leaks(text) == [], text
    assert 'cvc\\": \\"***' in outputs[-1] or '"cvc": "***' in outputs[-1]  # kept, masked
    db_files = [p for p in tmp_path.iterdir() if p.name.startswith("journal.db")]  # + -wal
    assert db_files
    for path in db_files:
        assert _cvc_leaks(path.read_bytes()) == [], path
    messages = list(outbox.glob("*.eml"))
    assert len(messages) == 4  # confirmation + receipt, twice
    for path in messages:
        for text in _mail_texts(path):
            assert _cvc_leaks(text) == [], path
    intents = sandbox.client().v1.payment_intents.list({"limit": 10}).data
    assert len(intents) == 2
    for intent in intents:
        assert _cvc_leaks(json.dumps(intent.to_dict())) == []
        assert "9871" not in str(intent.to_dict().get("description"))
