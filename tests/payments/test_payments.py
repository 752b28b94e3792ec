"""The payment SOPs end to end against the real local Stripe sandbox (localstripe).

Runs go through the public API (``engine.run`` / ``engine.resume``) with a real
SQLite journal; confirming a paused refund goes through ``sop resume`` as a real
subprocess, as a person would type it. Sandbox request logs prove what reached
"Stripe" and how often.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import stripe

from engine.binding.packs import load_handlers
from engine.binding.registry import Registry
from engine.errors import SopFailure
from engine.execution.context import Services
from engine.execution.runner import RunResult, RunStatus, resume, run
from engine.language.catalog import load as load_sop
from engine.storage.journal import Journal
from handlers.payments import charges as payments
from handlers.payments.stripe_api import StripeGateway, map_stripe_error, sop_timeout
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP = "payment-processing"


@pytest.fixture
def registry() -> Registry:
    return load_handlers(["handlers.payments"], project_dir=ROOT)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    monkeypatch.setenv("SOP_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "journal.db"))
    with Journal(tmp_path / "journal.db") as jr:
        yield jr


@pytest.fixture
def services(registry: Registry, sandbox: Sandbox) -> Services:
    svc = Services(None, registry.services())

    class _Ctx:
        sop = None

    svc.bind(_Ctx())  # type: ignore[arg-type]
    return svc


@pytest.fixture
def customer(services: Services) -> str:
    return payments.make_customer(services, "cus_TEST")


def _run(journal: Journal, registry: Registry, **params: Any) -> RunResult:
    return run(SOP, params, registry=registry, journal=journal)


def _posts(sandbox: Sandbox, path: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r.get("method") == "POST" and r.get("path") == path]


def _intents(sandbox: Sandbox, customer: str) -> list[Any]:
    listed = (
        sandbox.client().v1.payment_intents.list({"limit": 100}).data
    )  # localstripe: no customer filter
    return [pi for pi in listed if pi.customer == customer]


def _transactions(journal: Journal, run_id: str) -> list[dict[str, Any]]:
    return [r["data"] for r in journal.records(run_id) if r["kind"] == "transaction"]


def _charge(journal: Journal, registry: Registry, customer: str, amount: int) -> str:
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=amount)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    return str(result.output["transaction_id"])


def test_charge_output_is_example_1_and_the_transaction_is_recorded(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    result = _run(
        journal,
        registry,
        operation="charge",
        customer_id=customer,
        amount=2500,
        currency="usd",
        description="Monthly subscription",
    )
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert set(result.output) == {"success", "transaction_id", "amount", "status"}
    assert result.output["success"] is True
    assert result.output["amount"] == 2500 and result.output["status"] == "succeeded"
    pi_id = result.output["transaction_id"]
    assert pi_id.startswith("pi_")
    posts = _posts(sandbox, "/v1/payment_intents")
    assert len(posts) == 1 and posts[0]["idempotency_key"]
    intent = sandbox.client().v1.payment_intents.retrieve(pi_id)
    assert intent.metadata["sop_run_id"] == result.run_id
    assert intent.metadata["sop_name"] == SOP and intent.metadata["sop_version"] == "1.0.0"
    assert intent.metadata["description"] == "Monthly subscription"  # localstripe: kept in metadata
    (txn,) = _transactions(journal, result.run_id)
    assert txn["id"] == pi_id and txn["type"] == "charge" and txn["amount"] == 2500
    assert txn["currency"] == "usd" and txn["customer"] == customer
    assert txn["status"] == "succeeded" and txn["run_id"] == result.run_id
    skipped = {a.text: a.reason for a in result.actions if a.status.value == "skipped"}
    assert "no Radar risk score" in (skipped["check fraud detection score if available"] or "")
    assert "SOP_STATEMENT_DESCRIPTOR" in (skipped["add statement descriptor if configured"] or "")
    outbox = list((Path(os.environ["SOP_OUTBOX"])).glob("*.eml"))
    templates = sorted(p.name.removeprefix(f"{result.run_id}-").split("-")[0] for p in outbox)
    assert templates == ["confirmation", "receipt"]


def test_partial_then_full_refund_then_nothing_left(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    pi = _charge(journal, registry, customer, 5000)
    partial = _run(
        journal, registry, operation="refund", customer_id=customer, payment_intent=pi, amount=2000
    )
    assert partial.status is RunStatus.SUCCEEDED, partial.errors
    assert partial.output["amount"] == 2000 and partial.output["transaction_id"].startswith("re_")
    full = _run(journal, registry, operation="refund", customer_id=customer, payment_intent=pi)
    assert full.status is RunStatus.SUCCEEDED, full.errors
    assert full.output["amount"] == 3000  # what was left
    before = len(_posts(sandbox, "/v1/refunds"))
    again = _run(
        journal, registry, operation="refund", customer_id=customer, payment_intent=pi, amount=1
    )
    assert again.status is RunStatus.FAILED
    assert "nothing is left to refund" in again.errors[0]
    assert len(_posts(sandbox, "/v1/refunds")) == before == 2


def test_refund_more_than_refundable_is_refused_before_stripe(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    pi = _charge(journal, registry, customer, 5000)
    result = _run(
        journal, registry, operation="refund", customer_id=customer, payment_intent=pi, amount=6000
    )
    assert result.status is RunStatus.FAILED
    assert result.errors == [f"refund amount 6000 exceeds the refundable amount 5000 of {pi}"]
    assert _posts(sandbox, "/v1/refunds") == []


def test_refund_of_someone_elses_payment_is_refused(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, services: Services
) -> None:
    pi = _charge(journal, registry, customer, 5000)
    other = payments.make_customer(services, "cus_OTHER")
    result = _run(
        journal, registry, operation="refund", customer_id=other, payment_intent=pi, amount=100
    )
    assert result.status is RunStatus.FAILED
    assert "does not belong to customer" in result.errors[0]
    assert _posts(sandbox, "/v1/refunds") == []


def _sop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, cwd=ROOT, env=env)


def test_large_refund_pauses_before_any_call_then_confirmed_once(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, tmp_path: Path
) -> None:
    pi = _charge(journal, registry, customer, 20000)
    seen = len(sandbox.requests())
    paused = _run(
        journal, registry, operation="refund", customer_id=customer, payment_intent=pi, amount=15000
    )
    assert paused.status is RunStatus.PAUSED
    assert paused.output == {
        "requires_confirmation": True,
        "message": "Refund amount exceeds $100. Please confirm.",
        "pending_refund": {"amount": 15000, "payment_intent": pi},
    }
    assert len(sandbox.requests()) == seen  # the gate runs before step 1: no Stripe call at all
    assert paused.pending is not None
    token = paused.pending["token"]
    env = {**os.environ, **sandbox.env()}
    journal_path = str(tmp_path / "journal.db")
    done = _sop("resume", paused.run_id, "--confirm", token, "--journal", journal_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "re_" in done.stdout
    assert len(_posts(sandbox, "/v1/refunds")) == 1
    again = _sop("resume", paused.run_id, "--confirm", token, "--journal", journal_path, env=env)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert "already succeeded" in again.stderr or "already used" in again.stderr
    assert len(_posts(sandbox, "/v1/refunds")) == 1


def test_example_2_confirmed_fails_cleanly_for_the_refundable_amount(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    pi = _charge(journal, registry, customer, 2500)
    paused = _run(
        journal, registry, operation="refund", customer_id=customer, payment_intent=pi, amount=15000
    )
    assert paused.status is RunStatus.PAUSED and paused.pending
    confirmed = resume(
        paused.run_id, confirm=paused.pending["token"], registry=registry, journal=journal
    )
    assert confirmed.status is RunStatus.FAILED
    assert confirmed.errors == [f"refund amount 15000 exceeds the refundable amount 2500 of {pi}"]
    assert "requires_confirmation" not in confirmed.output
    assert _posts(sandbox, "/v1/refunds") == []


def test_subscription_create_and_cancel_run_as_child_runs(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, services: Services
) -> None:
    plan = payments.make_plan(services, "plan_BASIC")
    created = _run(journal, registry, operation="subscription", customer_id=customer, plan=plan)
    assert created.status is RunStatus.SUCCEEDED, created.errors
    assert created.output["status"] == "active"
    sub_id = created.output["subscription_id"]
    assert sub_id.startswith("sub_") and created.output["transaction_id"] == sub_id
    (child,) = journal.children(created.run_id)
    assert child.sop == "subscription-management" and child.status == "succeeded"
    assert len(_posts(sandbox, "/v1/subscriptions")) == 1
    canceled = _run(
        journal,
        registry,
        operation="subscription",
        customer_id=customer,
        subscription_action="cancel",
        subscription_id=sub_id,
    )
    assert canceled.status is RunStatus.SUCCEEDED, canceled.errors
    assert canceled.output["status"] == "canceled"
    assert sandbox.client().v1.subscriptions.retrieve(sub_id).status == "canceled"
    kinds = [r["kind"] for r in journal.records(canceled.run_id)]
    assert "subscription" in kinds and "transaction" in kinds


def test_declined_card_fails_with_one_request_and_is_not_retried(
    sandbox: Sandbox, journal: Journal, registry: Registry, fast_retries: None
) -> None:
    client = sandbox.client()
    cus = client.v1.customers.create({"email": "declined@example.invalid"})
    pm = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    result = _run(journal, registry, operation="charge", customer_id=cus.id, amount=2500)
    assert result.status is RunStatus.FAILED
    assert "declined" in result.errors[0].lower()
    assert len(_posts(sandbox, "/v1/payment_intents")) == 1
    (txn,) = _transactions(journal, result.run_id)
    assert txn["status"] == "failed" and txn["failure"] == "Card declined"
    assert result.output == {"success": False, "status": "failed", "error": "Card declined"}
    assert "4000000000000341" not in str(journal.events(result.run_id))


@pytest.mark.parametrize(
    ("decline_code", "condition"),
    [("insufficient_funds", "Insufficient funds"), ("fraudulent", "Fraud detected")],
)
def test_decline_codes_map_to_recovery_rows_and_are_never_retried(
    sandbox: Sandbox,
    journal: Journal,
    registry: Registry,
    customer: str,
    fast_retries: None,
    decline_code: str,
    condition: str,
) -> None:
    sandbox.inject("decline", match="/v1/payment_intents", method="POST", decline_code=decline_code)
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=2500)
    fraud = condition == "Fraud detected"  # the SOP: "Block transaction, escalate to supervisor"
    assert result.status is (RunStatus.BLOCKED if fraud else RunStatus.FAILED)
    assert len(_posts(sandbox, "/v1/payment_intents")) == 1
    (txn,) = _transactions(journal, result.run_id)
    assert txn["failure"] == condition
    escalations = list(Path(os.environ["SOP_OUTBOX"]).glob("*escalation*.eml"))
    assert len(escalations) == (1 if condition == "Fraud detected" else 0)
    if escalations:
        assert txn["status"] == "blocked"
        assert "ESCALATION Fraud detected" in escalations[0].read_text()


def test_flagged_customer_is_blocked_before_any_charge_and_escalated(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    sandbox.client().v1.customers.update(customer, {"metadata": {"flagged": "true"}})
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=2500)
    assert result.status is RunStatus.BLOCKED
    assert result.errors[0].startswith("blocked: Fraud detected")
    assert _posts(sandbox, "/v1/payment_intents") == []
    assert len(list(Path(os.environ["SOP_OUTBOX"]).glob("*escalation*.eml"))) == 1


def test_rate_limited_then_success_makes_one_payment_intent(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("429", match="/v1/payment_intents", method="POST")
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=2500)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    posts = _posts(sandbox, "/v1/payment_intents")
    assert len(posts) == 2 and len({p["idempotency_key"] for p in posts}) == 1
    assert len(_intents(sandbox, customer)) == 1
    endpoint = next(
        a for a in result.actions if a.text.startswith("use appropriate Stripe API endpoint")
    )
    assert endpoint.attempts == 2


def test_response_dropped_after_the_charge_makes_one_payment_intent(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("drop_after", match="/v1/payment_intents", method="POST")
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=2500)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert len(_intents(sandbox, customer)) == 1
    assert result.output["transaction_id"] == _intents(sandbox, customer)[0].id


def test_unknown_customer_and_customer_without_card(
    sandbox: Sandbox, journal: Journal, registry: Registry
) -> None:
    missing = _run(
        journal, registry, operation="charge", customer_id="cus_doesnotexist", amount=100
    )
    assert missing.status is RunStatus.FAILED and missing.errors == ["Customer not found"]
    bare = sandbox.client().v1.customers.create({"email": "bare@example.invalid"})
    no_card = _run(journal, registry, operation="charge", customer_id=bare.id, amount=100)
    assert no_card.status is RunStatus.FAILED and no_card.errors == ["No payment method available"]
    assert _posts(sandbox, "/v1/payment_intents") == []


def test_inspect_shows_the_transaction(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, tmp_path: Path
) -> None:
    pi = _charge(journal, registry, customer, 1234)
    run_id = journal.runs()[0].run_id
    shown = _sop("inspect", run_id, "--journal", str(tmp_path / "journal.db"), env=dict(os.environ))
    assert shown.returncode == 0, shown.stderr
    records = shown.stdout.split("\nrecords:\n", 1)[1]
    line = next(x for x in records.splitlines() if " transaction " in x)
    assert pi in line and '"amount": 1234' in line and customer in line


def test_timeout_comes_from_the_sop_text() -> None:
    from engine.language.catalog import load

    assert sop_timeout(load(SOP)) == 30.0
    gw = StripeGateway.from_env(
        30.0, env={"STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:1"}
    )
    assert gw.timeout == 30.0 and gw.compat is True
    assert StripeGateway.from_env(None, env={"STRIPE_API_KEY": "sk_test_x"}).compat is False


def _error(cls: type[stripe.StripeError], status: int, **error: Any) -> stripe.StripeError:
    body = {"error": {"message": "m", **error}}
    if cls in (stripe.CardError, stripe.InvalidRequestError):
        return cls("m", None, error.get("code"), json_body=body, http_status=status)  # type: ignore[call-arg]
    return cls("m", json_body=body, http_status=status)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("exc", "condition", "retryable"),
    [
        (
            _error(stripe.CardError, 402, code="card_declined", decline_code="generic_decline"),
            "Card declined",
            False,
        ),
        (
            _error(stripe.CardError, 402, code="card_declined", decline_code="insufficient_funds"),
            "Insufficient funds",
            False,
        ),
        (
            _error(stripe.CardError, 402, code="card_declined", decline_code="fraudulent"),
            "Fraud detected",
            False,
        ),
        (_error(stripe.RateLimitError, 429), "Rate limited", True),
        (stripe.APIConnectionError("connection reset"), "Network timeout", True),
        (_error(stripe.APIError, 409), "Network timeout", True),
        (_error(stripe.APIError, 503), "Network timeout", True),
        (_error(stripe.InvalidRequestError, 400), "payment fails", False),
    ],
)
def test_stripe_errors_map_to_recovery_rows(
    exc: stripe.StripeError, condition: str, retryable: bool
) -> None:
    failure = map_stripe_error(exc)
    assert isinstance(failure, SopFailure)
    assert (failure.condition, failure.retryable) == (condition, retryable)


def test_rate_limit_retries_stop_at_the_sop_budget(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("429", match="/v1/payment_intents", method="POST", times=10)
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=2500)
    assert result.status is RunStatus.FAILED
    endpoint = next(a for a in result.actions if a.text.startswith("use appropriate Stripe API"))
    assert endpoint.attempts == 4  # 1 + "retry with exponential backoff" (default 3)
    assert len(_posts(sandbox, "/v1/payment_intents")) == 4
    assert _intents(sandbox, customer) == []


def test_server_errors_are_retried_as_network_timeouts(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("503", match="/v1/payment_intents", method="POST", times=2)
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=700)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert len(_posts(sandbox, "/v1/payment_intents")) == 3
    assert len(_intents(sandbox, customer)) == 1


def test_configured_optional_lines_run(
    sandbox: Sandbox,
    journal: Journal,
    registry: Registry,
    customer: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import http.server
    import threading

    received: list[bytes] = []
    keys: list[str] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            keys.append(self.headers["Idempotency-Key"])
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SOP_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
        monkeypatch.setenv("SOP_ANALYTICS_FILE", str(tmp_path / "analytics.jsonl"))
        monkeypatch.setenv("SOP_STATEMENT_DESCRIPTOR", "SOPDEMO")
        result = _run(journal, registry, operation="charge", customer_id=customer, amount=900)
    finally:
        server.shutdown()
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert all(
        a.status.value == "passed"
        for a in result.actions
        if a.level in ("MAY", "SHOULD") and "webhook" in a.text
    )
    assert len(received) == 1 and result.output["transaction_id"].encode() in received[0]
    assert json.loads(received[0])["id"] == keys[0]  # the receiver's dedupe key
    analytics = tmp_path / "analytics.jsonl"
    assert '"event": "charge.succeeded"' in analytics.read_text()
    # a resume that repeats the analytics action (killed after it wrote, before the
    # journal knew) adds nothing: the same key is already in the sink
    (event,) = [json.loads(line) for line in analytics.read_text().splitlines()]
    again = SimpleNamespace(
        idempotency_key=lambda purpose: event["id"] if purpose == "analytics" else purpose,
        state={"transaction": {k: event[k] for k in ("type", "status")}},
        params={},
        sop=load_sop(result.sop),
        run_id=result.run_id,
    )
    payments.track_analytics(again)
    assert len(analytics.read_text().splitlines()) == 1
    intent = sandbox.client().v1.payment_intents.retrieve(result.output["transaction_id"])
    assert intent.metadata["statement_descriptor_suffix"] == "SOPDEMO"


def test_refund_handling_uses_its_own_error_messages(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, services: Services
) -> None:
    pi = _charge(journal, registry, customer, 3000)
    other = payments.make_customer(services, "cus_ELSE")
    params = {"customer_id": other, "payment_intent": pi, "amount": 100}
    wrong = run("refund-handling", params, registry=registry, journal=journal)
    assert wrong.status is RunStatus.FAILED and wrong.errors == ["Payment not found"]
    params = {"customer_id": customer, "payment_intent": pi, "amount": 5000}
    too_much = run("refund-handling", params, registry=registry, journal=journal)
    assert too_much.errors == ["Refund amount exceeds the refundable amount"]
    assert _posts(sandbox, "/v1/refunds") == []


def test_cancelling_someone_elses_subscription_is_refused(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, services: Services
) -> None:
    plan = payments.make_plan(services, "plan_PRO")
    params = {"action": "create", "customer_id": customer, "plan": plan}
    sub = run("subscription-management", params, registry=registry, journal=journal)
    assert sub.status is RunStatus.SUCCEEDED, sub.errors
    other = payments.make_customer(services, "cus_THIEF")
    params = {
        "action": "cancel",
        "customer_id": other,
        "subscription_id": sub.output["subscription_id"],
    }
    refused = run("subscription-management", params, registry=registry, journal=journal)
    assert refused.status is RunStatus.FAILED and refused.errors == ["Subscription not found"]
    assert [r for r in sandbox.requests() if r["method"] == "DELETE"] == []


def test_notifier_renders_redacted_templates_to_outbox_and_smtp(tmp_path: Path) -> None:
    import socketserver
    import threading

    from handlers.payments.notify import Notifier, format_amount

    got: list[str] = []

    class Smtp(socketserver.StreamRequestHandler):
        """Just enough SMTP (RFC 5321) for smtplib: greet, accept one message, quit."""

        def handle(self) -> None:
            self.wfile.write(b"220 sink ready\r\n")
            data = False
            lines: list[str] = []
            for raw in self.rfile:
                line = raw.decode().rstrip("\r\n")
                if data:
                    if line == ".":
                        data = False
                        got.append("\n".join(lines))
                        self.wfile.write(b"250 queued\r\n")
                    else:
                        lines.append(line)
                    continue
                verb = line[:4].upper()
                if verb == "DATA":
                    data = True
                    self.wfile.write(b"354 go on\r\n")
                elif verb == "QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.TCPServer(("127.0.0.1", 0), Smtp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"SOP_OUTBOX": str(tmp_path / "out"), "SOP_SMTP_HOST": "127.0.0.1"}
        env["SOP_SMTP_PORT"] = str(server.server_address[1])
        notifier = Notifier.from_env(env)
        context = {
            "operation": "charge",
            "amount": 2500,
            "currency": "usd",
            "transaction_id": "pi_1",
            "customer_name": "Ada",
            "card_last4": "4242",
            "description": "card 4242 4242 4242 4242 cvv 123",
        }
        path = notifier.send("receipt", "ada@example.invalid", context, run_id="r1", key="k1")
    finally:
        server.shutdown()
        server.server_close()
    text = path.read_text()
    assert "Subject: Your receipt for 25.00 USD" in text and "**** **** **** 4242" in text
    assert "4242 4242 4242 4242" not in text and "cvv 123" not in text
    assert len(got) == 1 and "Your receipt for 25.00 USD" in got[0] and "cvv 123" not in got[0]
    assert format_amount(500, "jpy") == "500 JPY" and format_amount(5, "eur") == "0.05 EUR"


def test_a_held_then_closed_connection_is_retried_with_the_same_key(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("timeout", match="/v1/payment_intents", method="POST", seconds=0.2)
    result = _run(journal, registry, operation="charge", customer_id=customer, amount=4200)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    keys = {p["idempotency_key"] for p in _posts(sandbox, "/v1/payment_intents")}
    assert len(keys) == 1 and len(_intents(sandbox, customer)) == 1


def test_full_refund_above_threshold_pauses_for_the_refundable_amount(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str
) -> None:
    pi = _charge(journal, registry, customer, 12000)
    paused = _run(journal, registry, operation="refund", customer_id=customer, payment_intent=pi)
    assert paused.status is RunStatus.PAUSED and paused.pending
    assert paused.output["pending_refund"] == {"amount": 12000, "payment_intent": pi}
    assert _posts(sandbox, "/v1/refunds") == []  # only reads happened before the pause
    done = resume(
        paused.run_id, confirm=paused.pending["token"], registry=registry, journal=journal
    )
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert done.output["amount"] == 12000 and "requires_confirmation" not in done.output
    assert len(_posts(sandbox, "/v1/refunds")) == 1
