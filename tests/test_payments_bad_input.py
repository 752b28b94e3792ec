"""Bad input to ``sop run payment-processing``: exit 2, one clear line, nothing reaches Stripe.

Each case is a real ``sop`` subprocess pointed at the real sandbox; the sandbox's
request log proves that not a single request was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"operation": "charge", "customer_id": "cus_ABC123", "amount": "2500"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"customer_id": "customer-42"}, "customer_id"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "100000000"}, "amount"),
        ({"description": "x" * 501}, "description"),
        ({"currency": "dollars"}, "currency"),
        ({"operation": "transfer"}, "operation"),
        ({"amount": "ten"}, "amount"),
        ({"operation": "refund", "amount": "100"}, "payment_intent"),
        ({"payment_intent": "ch_123"}, "payment_intent"),
        ({"operation": "subscription", "amount": None}, "plan"),
    ],
)
def test_bad_parameter_exits_2_and_reaches_no_sandbox(
    sandbox: Sandbox, tmp_path: Path, change: dict[str, str | None], named: str
) -> None:
    params = {**GOOD, **change}
    args = [f"-p{key}={value}" for key, value in params.items() if value is not None]
    env = {**os.environ, **sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            "payment-processing",
            *args,
            "--journal",
            str(tmp_path / "j.db"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("sop: error:") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert named in done.stderr
    assert sandbox.requests() == []
    assert not (tmp_path / "outbox").exists()
