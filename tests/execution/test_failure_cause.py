"""A failure keeps the SOP's words and shows its cause (issue 9, defect 9).

The result's ``errors`` and each action's ``reason`` stay the SOP's message ("Log
error, return failure details"); each failed action's ``cause`` adds what happened
(exception type, HTTP status, Stripe error type/code, request id, the handler's
file:line); ``--debug`` and the journal add the redacted traceback; ``sop inspect``
shows both. Real parts: the sandbox (a rejected key, Stripe's idempotency 400), a
handler module with a bug, ``sop`` as a subprocess, the journal's bytes scanned.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.binding.packs import load_handlers
from engine.binding.registry import Registry
from engine.errors import ParameterError
from engine.execution.runner import RunStatus, run
from engine.language.resources import load_schema
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.cli import pythonpath, sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP = "payment-processing"
SOP_MESSAGE = "Log error, return failure details"
WRONG_KEY = "rk_test_WRONGKEY0123456789"
CARDS = ("4242 4242 4242 4242", "4242424242424242", "4000 0566 5566 5556", "4000056655665556")


def _journal_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("journal.db*"))


def _assert_no_secrets(*texts: str | bytes) -> None:
    for text in texts:
        raw = text.encode() if isinstance(text, str) else text
        for secret in (*CARDS, "WRONGKEY0123456789", "cvc 987"):
            assert secret.encode() not in raw, secret


@pytest.fixture
def customer(sandbox: Sandbox) -> str:
    client = sandbox.client()
    cus = client.v1.customers.create({"email": "cause@example.invalid"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(cus.id)


def _sop(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {"SOP_OUTBOX": str(tmp_path / "outbox"), "SOP_RETRY_BASE_SECONDS": "0.01", **env}
    journal = str(tmp_path / "journal.db")
    return sop_cli(*args, "--journal", journal, cwd=ROOT, env=env, drop=["SOP_JOURNAL"])


def _action(result: dict[str, Any], text: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in result["actions"] if a["text"] == text)
    return found


def test_a_rejected_api_key_shows_http_401_in_json_debug_and_inspect(
    sandbox: Sandbox, customer: str, tmp_path: Path
) -> None:
    env = {**sandbox.env(), "STRIPE_API_KEY": WRONG_KEY}
    args = ["run", SOP, "--handlers", "handlers.payments", "-p", "operation=charge"]
    args += ["-p", f"customer_id={customer}", "-p", "amount=2500"]
    args += ["-p", "description=card 4242 4242 4242 4242 cvc 987"]
    proc = _sop(tmp_path, env, *args, "--json", "--debug")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    jsonschema.validate(result, load_schema("run-result.schema.json"))
    assert result["status"] == "failed" and result["errors"] == [SOP_MESSAGE]
    verify = _action(result, "verify customer_id exists in Stripe")
    assert verify["reason"] == SOP_MESSAGE  # the SOP's words stay
    cause = verify["cause"]
    assert cause["http_status"] == 401 and cause["stripe_error"] == "AuthenticationError"
    assert cause["condition"] == "payment fails" and cause["request_id"].startswith("req_")
    assert cause["where"].startswith("handlers/payments/charges.py:")
    assert cause["where"].endswith(" in verify_customer")
    # --debug: the cause line and the redacted traceback, on stderr (stdout stays JSON)
    assert "HTTP 401" in proc.stderr and "AuthenticationError" in proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert 'handlers/payments/charges.py", line' in proc.stderr
    run_id = result["run_id"]

    shown = _sop(tmp_path, {}, "inspect", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "cause: SopFailure [payment fails]: " in shown.stdout
    assert "HTTP 401" in shown.stdout and "AuthenticationError" in shown.stdout
    assert "traceback:" in shown.stdout and "stripe._error.AuthenticationError" in shown.stdout
    as_json = json.loads(_sop(tmp_path, {}, "inspect", run_id, "--json").stdout)
    assert _action(as_json["result"], verify["text"])["cause"] == cause
    (finished,) = [
        e for e in as_json["events"] if e["type"] == "action_finished" and "traceback" in e["data"]
    ]
    assert "AuthenticationError" in finished["data"]["traceback"]
    _assert_no_secrets(proc.stdout, proc.stderr, shown.stdout, _journal_bytes(tmp_path))


def test_a_stripe_400_shows_its_type_and_an_oversized_id_never_reaches_stripe(
    sandbox: Sandbox, customer: str, tmp_path: Path, fast_retries: None
) -> None:
    registry: Registry = load_handlers(["handlers.payments"], project_dir=ROOT)
    params = {"operation": "charge", "customer_id": customer, "idempotency_key": "order-400"}
    with Journal(tmp_path / "a.db") as journal:
        first = run(SOP, {**params, "amount": 2500}, registry=registry, journal=journal)
        assert first.status is RunStatus.SUCCEEDED, first.errors
    # the same key with another amount, from a journal that never saw the first run (one
    # journal refuses it itself): Stripe answers 400 idempotency_error
    with Journal(tmp_path / "b.db") as journal:
        second = run(SOP, {**params, "amount": 3000}, registry=registry, journal=journal)
        requests = len(sandbox.requests())
        with pytest.raises(ParameterError, match="customer_id: 9004 characters is longer than 255"):
            run(
                SOP,
                {"operation": "charge", "customer_id": "cus_" + "x" * 9000, "amount": 100},
                registry=registry,
                journal=journal,
            )
        assert len(sandbox.requests()) == requests  # Stripe's own limit, checked before it
    assert second.status is RunStatus.FAILED and second.errors == [SOP_MESSAGE]
    endpoint = next(a for a in second.actions if a.text.startswith("use appropriate Stripe API"))
    cause = endpoint.to_dict()["cause"]
    assert cause["http_status"] == 400 and cause["error_type"] == "idempotency_error"
    assert cause["stripe_error"] == "IdempotencyError" and cause["request_id"].startswith("req_")
    assert "same parameters" in cause["message"]
    assert cause["where"].startswith("handlers/payments/charges.py:")


BUGGY_SOP = """\
# Buggy Demo

**Version**: 1.0.0

## Overview

A handler with a bug.

## Parameters

- **amount** (integer): Amount in cents

## Steps

### 1. Pay

**Actions**:
- MUST pay the amount

**Error Handling**:
- If payment fails: Log error, return failure details
"""

BUGGY_HANDLERS = """\
from engine.binding.registry import action


@action("pay the amount")
def pay(ctx):
    cards = {"4242 4242 4242 4242": "cvc 987"}
    return cards["4000 0566 5566 5556"]  # KeyError: the bug
"""
BUG_LINE = 7


@pytest.fixture
def buggy(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "buggy-demo.sop.md").write_text(BUGGY_SOP, encoding="utf-8")
    (tmp_path / "buggy_handlers.py").write_text(BUGGY_HANDLERS, encoding="utf-8")
    return tmp_path


def _buggy(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": pythonpath(project)}
    journal = str(project / "journal.db")
    return sop_cli(*args, "--journal", journal, cwd=project, env=env, drop=["SOP_JOURNAL"])


def test_a_keyerror_in_a_handler_shows_type_message_and_file_line(buggy: Path) -> None:
    proc = _buggy(
        buggy, "run", "buggy-demo", "--handlers", "buggy_handlers", "-p", "amount=5", "--json"
    )
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    (pay,) = result["actions"]
    assert pay["status"] == "failed"
    cause = pay["cause"]
    assert cause["type"] == "KeyError"
    assert cause["message"].startswith("'400005") and cause["message"].endswith("5556'")
    assert cause["where"] == f"buggy_handlers.py:{BUG_LINE} in pay"
    assert "raised_at" not in cause  # raised in the handler itself

    text = _buggy(buggy, "run", "buggy-demo", "--handlers", "buggy_handlers", "-p", "amount=6")
    assert f"cause: KeyError: '400005******5556' at buggy_handlers.py:{BUG_LINE} in pay" in (
        text.stdout
    )
    assert "Traceback" not in text.stdout + text.stderr  # only with --debug
    debug = _buggy(
        buggy, "run", "buggy-demo", "--handlers", "buggy_handlers", "-p", "amount=7", "--debug"
    )
    assert debug.returncode == 1
    assert f'buggy_handlers.py", line {BUG_LINE}, in pay' in debug.stderr
    assert "KeyError: '400005******5556'" in debug.stderr

    shown = _buggy(buggy, "inspect", result["run_id"])
    assert f"cause: KeyError: '400005******5556' at buggy_handlers.py:{BUG_LINE}" in shown.stdout
    assert f'buggy_handlers.py", line {BUG_LINE}, in pay' in shown.stdout
    as_json = json.loads(_buggy(buggy, "inspect", result["run_id"], "--json").stdout)
    assert as_json["result"]["actions"][0]["cause"] == cause
    _assert_no_secrets(
        proc.stdout, text.stdout, debug.stdout, debug.stderr, shown.stdout, _journal_bytes(buggy)
    )
