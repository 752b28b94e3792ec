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

from engine.binding.packs import load_handlers
from engine.execution.context import Services
from handlers.payments import charges as payments
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
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
        # issue 9, defect 10: integers are ASCII digits; lengths are Stripe's limits
        ({"amount": "\u0661\u0662\u0663"}, "amount"),  # Arabic-Indic 123
        ({"amount": "\uff11\uff12\uff13"}, "amount"),  # full-width 123
        ({"amount": "25\u0966\u0966"}, "amount"),  # ASCII and Devanagari digits mixed
        ({"amount": "2_500"}, "amount"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"customer_id": "cus_" + "A" * 252}, "customer_id"),
        ({"operation": "refund", "payment_intent": "pi_" + "1" * 253}, "payment_intent"),
        ({"operation": "subscription", "amount": None, "plan": "price_" + "x" * 250}, "plan"),
        (
            {"operation": "subscription", "subscription_action": "cancel", "amount": None}
            | {"subscription_id": "sub_" + "9" * 252},
            "subscription_id",
        ),
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
            "engine.cli.main",
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


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("amount: \u0661\u0662\u0663\n", "amount"),  # YAML reads it as a string
        ('{"amount": "\uff11\uff12\uff13"}', "amount"),  # JSON
        ("amount: 0x10\n", "amount"),  # YAML 1.1 would read 16
        ("amount: 1:30\n", "amount"),  # YAML 1.1 would read 90 (base 60)
        ("amount: 2_500\n", "amount"),  # YAML 1.1 would read 2500
        (f"idempotency_key: {'k' * 256}\n", "idempotency_key"),
    ],
)
def test_bad_params_file_exits_2_and_reaches_no_sandbox(
    sandbox: Sandbox, tmp_path: Path, text: str, named: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("operation: charge\ncustomer_id: cus_ABC123\n" + text, encoding="utf-8")
    if text.startswith("{"):  # a JSON file: one object
        params.write_text(
            '{"operation": "charge", "customer_id": "cus_ABC123", ' + text[1:], encoding="utf-8"
        )
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    journal = str(tmp_path / "j.db")
    args = ("run", "payment-processing", "--params-file", str(params), "--journal", journal)
    done = sop_cli(*args, cwd=ROOT, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("sop: error:") and done.stderr.count("\n") == 1
    assert named in done.stderr and "Traceback" not in done.stderr
    assert sandbox.requests() == []


def test_longest_idempotency_key_stripe_allows_is_sent_within_its_limit(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A 255-character key is valid; the keys derived from it (key:kind) stay within 255."""
    registry = load_handlers(["handlers.payments"], project_dir=ROOT)
    services = Services(None, registry.services())

    class _Ctx:
        sop = None

    services.bind(_Ctx())  # type: ignore[arg-type]
    customer = payments.make_customer(services, "cus_LONGKEY")
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    args = [f"-p{k}={v}" for k, v in {**GOOD, "customer_id": customer}.items()]
    key = "k" * 255
    run = ("run", "payment-processing", *args, f"-pidempotency_key={key}", "--json")
    done = sop_cli(*run, "--journal", str(tmp_path / "j.db"), cwd=ROOT, env=env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    sent = [r["idempotency_key"] for r in sandbox.requests() if r["method"] == "POST"]
    assert sent and all(0 < len(k) <= 255 for k in sent), [len(k) for k in sent]
    assert len(sandbox.client().v1.payment_intents.list({"limit": 10}).data) == 1


@pytest.mark.parametrize(
    ("sop", "params", "named"),
    [
        ("refund-handling", {"payment_intent": "pi_" + "1" * 253}, "payment_intent"),
        ("refund-handling", {"payment_intent": "pi_1", "idempotency_key": "k" * 256}, "idem"),
        ("subscription-management", {"action": "create", "plan": "plan_" + "p" * 251}, "plan"),
        ("subscription-management", {"action": "cancel", "subscription_id": "sub_1"}, None),
    ],
)
def test_the_other_payment_sops_have_stripe_lengths_too(
    sandbox: Sandbox, tmp_path: Path, sop: str, params: dict[str, str], named: str | None
) -> None:
    customer_id = "cus_" + "C" * 252 if named is None else "cus_ABC123"
    args = [f"-p{k}={v}" for k, v in {"customer_id": customer_id, **params}.items()]
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    done = sop_cli("run", sop, *args, "--journal", str(tmp_path / "j.db"), cwd=ROOT, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and (named or "customer_id") in done.stderr
    assert sandbox.requests() == []
