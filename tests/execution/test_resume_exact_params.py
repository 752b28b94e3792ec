"""Resume replays exactly the parameters a run started with, never their redacted copy.

The journal keeps parameters redacted. A value redaction altered (a description holding
a card number; a caller's idempotency key whose digits contain a Luhn-valid run)
would reach Stripe altered on resume: another idempotency key, a second charge. The
journal records a hash of the exact parameters and which ones redaction altered; resume
refuses until those are supplied again and the whole set hashes to the recorded value.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

import engine
import engine.storage.journal
from engine.binding.packs import load_handlers
from engine.canonical import canonical
from engine.errors import SopError
from engine.execution.context import Services
from engine.execution.redact import redact_text
from engine.storage.journal import Journal, StartedRun
from handlers.payments import charges as payments
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP_TEXT = (ROOT / "sops" / "payment-processing.sop.md").read_text(encoding="utf-8")


def _line(fragment: str) -> int:
    return next(i for i, line in enumerate(SOP_TEXT.splitlines(), 1) if fragment in line)


CHARGE_LINE = _line("use appropriate Stripe API")
PREPARE_LINE = _line("include idempotency_key for all operations")
DESCRIPTION = "order 77 paid with 4242424242424242"


#: A caller's own key with a Luhn-valid digit run: redaction masks it in the journal. (A
#: UUID is never masked any more, so UUID keys no longer reach this path.)
KEY = "order-4111111111111111-attempt"
assert redact_text(KEY) != KEY


def _started(tmp_path: Path, run_id: str, params: dict[str, Any]) -> StartedRun | None:
    """Start ``run_id`` in a fresh journal and read it back as its chained events tell it."""
    with Journal(tmp_path / "j.db") as journal:
        journal.start_run(
            run_id,
            sop="demo",
            sop_path=None,
            version="1",
            content_hash="h",
            params=params,
            handlers=[],
        )
        journal.flush()
        return journal.started(run_id)


def test_the_journal_records_the_exact_parameters_hash_and_what_redaction_altered(
    tmp_path: Path,
) -> None:
    params = {"amount": 2500, "description": DESCRIPTION, "idempotency_key": KEY, "n": "x"}
    started = _started(tmp_path, "r1", params)
    assert started is not None
    assert started.redacted_params == ["description", "idempotency_key"]
    assert engine.storage.journal.params_match(started, params)
    assert not engine.storage.journal.params_match(started, {**params, "amount": 2501})
    # keyed: without the key, the exact values cannot be guessed from the journal
    assert started.params_sha256 is not None and started.params_sha256.startswith("hmac-sha256:")
    plain = hashlib.sha256(("r1\x1f" + canonical(params)).encode()).hexdigest()
    assert plain not in started.params_sha256
    assert started.params["description"] != DESCRIPTION  # the journal keeps it redacted
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("j.db*"))
    assert b"4242424242424242" not in raw and KEY.encode() not in raw


def _env(tmp_path: Path, sandbox: Sandbox, **extra: str) -> dict[str, str]:
    env = {
        **sandbox.env(),
        "SOP_JOURNAL": str(tmp_path / "journal.db"),
        "SOP_OUTBOX": str(tmp_path / "outbox"),
    }
    env.update(extra)
    return env


def _sop(tmp_path: Path, sandbox: Sandbox, *args: str, **extra: str) -> Any:
    return sop_cli(*args, cwd=ROOT, env=_env(tmp_path, sandbox, **extra), drop=["SOP_CRASH_AFTER"])


def _intents(sandbox: Sandbox, customer: str) -> list[Any]:
    listed = sandbox.client().v1.payment_intents.list({"limit": 100}).data
    return [pi for pi in listed if pi.customer == customer]


def _customer(name: str) -> str:
    services = Services(None, load_handlers(["handlers.payments"], project_dir=ROOT).services())

    class _Ctx:
        sop = None

    services.bind(_Ctx())  # type: ignore[arg-type]
    return str(payments.make_customer(services, name))


def _crashed_charge(tmp_path: Path, sandbox: Sandbox, customer: str, crash_after: str) -> str:
    crashed = _sop(
        tmp_path,
        sandbox,
        "run",
        "payment-processing",
        *("-p", "operation=charge", "-p", f"customer_id={customer}", "-p", "amount=2500"),
        *("-p", f"idempotency_key={KEY}", "-p", f"description={DESCRIPTION}"),
        SOP_CRASH_AFTER=crash_after,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    listed = _sop(tmp_path, sandbox, "runs", "--json")
    (run,) = json.loads(listed.stdout)
    return str(run["run_id"])


def test_resume_refuses_altered_parameters_then_replays_the_exact_ones(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Killed before the charge: resume refuses the journaled (redacted) parameters, naming
    them; a wrong value is refused; the originals complete the run, and Stripe sees the
    exact idempotency key and description."""
    customer = _customer("cus_EXACT")
    run_id = _crashed_charge(
        tmp_path, sandbox, customer, f"action_started:step2:action:L{PREPARE_LINE}"
    )
    assert _intents(sandbox, customer) == []

    refused = _sop(tmp_path, sandbox, "resume", run_id)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "description, idempotency_key" in refused.stderr
    assert f"sop resume {run_id} -p NAME=VALUE" in refused.stderr
    assert "engine.resume(run_id, params=" in refused.stderr

    wrong = _sop(
        tmp_path,
        sandbox,
        "resume",
        run_id,
        *("-p", f"idempotency_key={uuid.uuid4()}", "-p", f"description={DESCRIPTION}"),
    )
    assert wrong.returncode == 1 and "seal differs" in wrong.stderr, wrong.stderr
    assert _intents(sandbox, customer) == []

    params_file = tmp_path / "originals.json"
    params_file.write_text(json.dumps({"idempotency_key": KEY}), encoding="utf-8")
    done = _sop(
        tmp_path,
        sandbox,
        "resume",
        run_id,
        *("--params-file", str(params_file), "-p", f"description={DESCRIPTION}", "--json"),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    (intent,) = _intents(sandbox, customer)
    assert result["output"]["transaction_id"] == intent.id
    posts = [r for r in sandbox.requests() if r.get("path") == "/v1/payment_intents"]
    assert {r["idempotency_key"] for r in posts if r.get("method") == "POST"} == {
        f"{KEY}:payment_intent"
    }
    verify = _sop(tmp_path, sandbox, "journal", "verify")
    assert verify.returncode == 0, verify.stderr


def test_killed_after_the_charge_never_charges_twice(sandbox: Sandbox, tmp_path: Path) -> None:
    """Killed right after Stripe charged, before the outcome was journaled. Resuming with
    the journaled (redacted) key charged a second time; now resume refuses, and with the
    originals supplied it still refuses, because the request the run had built is in the
    journal only redacted: exactly one PaymentIntent either way."""
    customer = _customer("cus_ONCE")
    run_id = _crashed_charge(
        tmp_path, sandbox, customer, f"handler_returned:step3:action:L{CHARGE_LINE}"
    )
    assert len(_intents(sandbox, customer)) == 1
    refused = _sop(tmp_path, sandbox, "resume", run_id)
    assert refused.returncode == 1 and "description, idempotency_key" in refused.stderr
    supplied = _sop(
        tmp_path,
        sandbox,
        "resume",
        run_id,
        *("-p", f"idempotency_key={KEY}", "-p", f"description={DESCRIPTION}"),
    )
    assert supplied.returncode == 1, supplied.stdout
    assert "redaction altered state request" in supplied.stderr, supplied.stderr
    assert supplied.stderr.count("\n") == 1
    assert len(_intents(sandbox, customer)) == 1


def test_python_api_takes_the_exact_parameters(tmp_path: Path) -> None:
    """``engine.resume(run_id, params=...)``: refused without them, mismatch refused."""
    registry = engine.Registry()
    seen: list[dict[str, Any]] = []
    path = tmp_path / "exact.sop.md"
    path.write_text(
        "# Exact\n\n**Version**: 1.0.0\n\n## Overview\n\nx\n\n## Parameters\n\n### Required\n\n"
        "- **note** (string): a note\n- **key** (string): a key\n\n## Steps\n\n### 1. One\n\n"
        "**Actions**:\n- MUST remember the note\n- MUST stop here\n",
        encoding="utf-8",
    )
    sop = engine.load(str(path))

    @registry.action("remember the note")
    def remember(ctx: Any) -> None:
        seen.append(dict(ctx.params))

    @registry.action("stop here")
    def stop(ctx: Any) -> None:
        if not seen[-1].get("again"):
            raise KeyboardInterrupt  # the process "dies" with the run still running

    params = {"note": DESCRIPTION, "key": KEY}
    with Journal(tmp_path / "j.db") as journal:
        with pytest.raises(KeyboardInterrupt):
            engine.run(sop, params, registry=registry, journal=journal)
        (row,) = journal.runs()
        assert row.status == "running"
        with pytest.raises(SopError, match="redaction altered key, note"):
            engine.resume(row.run_id, registry=registry, journal=journal)
        with pytest.raises(SopError, match="seal differs"):
            engine.resume(
                row.run_id, params={"note": "other", "key": KEY}, registry=registry, journal=journal
            )
        assert len(seen) == 1  # neither refusal ran a handler
        seen[-1]["again"] = True  # let "stop here" pass on the resume
        result = engine.resume(row.run_id, params=params, registry=registry, journal=journal)
    assert result.ok, result.errors
    assert os.environ.get("SOP_CRASH_AFTER") is None


def test_unaltered_parameters_resume_without_being_supplied(tmp_path: Path) -> None:
    registry = engine.Registry()
    calls: list[str] = []
    path = tmp_path / "plain.sop.md"
    path.write_text(
        "# Plain\n\n**Version**: 1.0.0\n\n## Overview\n\nx\n\n## Parameters\n\n### Required\n\n"
        "- **note** (string): a note\n\n## Steps\n\n### 1. One\n\n**Actions**:\n"
        "- MUST do the thing\n",
        encoding="utf-8",
    )
    sop = engine.load(str(path))

    @registry.action("do the thing")
    def thing(ctx: Any) -> None:
        calls.append(ctx.params["note"])
        if len(calls) == 1:
            raise KeyboardInterrupt

    with Journal(tmp_path / "j.db") as journal:
        with pytest.raises(KeyboardInterrupt):
            engine.run(sop, {"note": "hello"}, registry=registry, journal=journal)
        (row,) = journal.runs()
        result = engine.resume(row.run_id, registry=registry, journal=journal)
    assert result.ok and calls == ["hello", "hello"]


def test_a_seal_made_with_another_journal_key_is_refused_not_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"description": DESCRIPTION, "idempotency_key": KEY}
    monkeypatch.setenv("SOP_JOURNAL_KEY", "key-of-machine-a")
    started = _started(tmp_path, "r2", params)
    assert started is not None and engine.storage.journal.params_match(started, params)
    monkeypatch.setenv("SOP_JOURNAL_KEY", "key-of-machine-b")
    with pytest.raises(SopError, match="sealed with journal key"):
        engine.storage.journal.params_match(started, params)
