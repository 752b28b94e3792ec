"""A side effect whose outcome was lost is ``unknown``, never ``failed``; resume reconciles it.

Issue 9, defect 3. Real parts throughout: the sandbox's fault layer loses the answer
to a charge (``drop_after``: localstripe acted, the connection is reset instead of
answering; ``reset``: reset before it reached localstripe, which the client cannot
tell apart), ``sop`` runs as a subprocess with a real journal, and the sandbox's
request log and PaymentIntent list prove what "Stripe" did and how often.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
import urllib3

from engine.binding.packs import load_handlers
from engine.binding.registry import Registry
from engine.errors import ConfirmationRequired, OutcomeUnknown, SopError, SopFailure
from engine.execution.runner import ActionStatus, RunStatus, resume, run
from engine.storage.journal import Journal
from handlers.payments.stripe_api import StripeGateway, make_client, map_stripe_error
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP = "payment-processing"
ENDPOINT = "use appropriate Stripe API endpoint for operation type"
#: 1 + "Network timeout | Retry up to 3 times with backoff"
ATTEMPTS = 4


@pytest.fixture
def registry() -> Registry:
    return load_handlers(["handlers.payments"], project_dir=ROOT)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    monkeypatch.setenv("SOP_OUTBOX", str(tmp_path / "outbox"))
    with Journal(tmp_path / "journal.db") as jr:
        yield jr


@pytest.fixture
def customer(sandbox: Sandbox) -> str:
    client = sandbox.client()
    cus = client.v1.customers.create({"email": "unknown@example.invalid"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(cus.id)


def _intents(sandbox: Sandbox, customer: str) -> list[Any]:
    listed = sandbox.client().v1.payment_intents.list({"limit": 100}).data
    return [pi for pi in listed if pi.customer == customer]


def _posts(sandbox: Sandbox, path: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == path]


def _sop(sandbox: Sandbox, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **sandbox.env(),
        "SOP_RETRY_BASE_SECONDS": "0.01",
        "SOP_OUTBOX": str(tmp_path / "outbox"),
    }
    return sop_cli(
        *args, "--journal", str(tmp_path / "journal.db"), cwd=ROOT, env=env, drop=["SOP_JOURNAL"]
    )


def _charge_args(customer: str, key: str) -> list[str]:
    return [
        "run",
        SOP,
        "--handlers",
        "handlers.payments",
        "-p",
        "operation=charge",
        "-p",
        f"customer_id={customer}",
        "-p",
        "amount=2500",
        "-p",
        f"idempotency_key={key}",
    ]


def test_lost_charge_is_unknown_resume_reconciles_and_a_rerun_is_refused(
    sandbox: Sandbox, customer: str, tmp_path: Path
) -> None:
    sandbox.inject("drop_after", match="/v1/payment_intents", method="POST", times=ATTEMPTS)
    lost = _sop(sandbox, tmp_path, *_charge_args(customer, "order-1001"))
    # the charge happened, the answer was lost every time: unknown (exit 4), not failed
    assert lost.returncode == 4, lost.stdout + lost.stderr
    run_id = lost.stdout.split(":", 1)[0].removeprefix("run ")
    assert lost.stdout.splitlines()[0].endswith(" unknown")
    assert "outcome unknown after 4 attempt(s)" in lost.stdout
    assert f"sop resume {run_id} --journal" in lost.stdout
    assert "Traceback" not in lost.stdout + lost.stderr
    assert len(_posts(sandbox, "/v1/payment_intents")) == ATTEMPTS
    (intent,) = _intents(sandbox, customer)  # Stripe holds exactly one, and it succeeded
    assert intent.status == "succeeded"

    shown = _sop(sandbox, tmp_path, "inspect", run_id, "--json")
    recorded = json.loads(shown.stdout)
    assert recorded["run"]["status"] == "unknown" and recorded["result"]["status"] == "unknown"
    endpoint = next(a for a in recorded["result"]["actions"] if a["text"] == ENDPOINT)
    assert endpoint["status"] == "unknown" and endpoint["cause"]["type"] == "OutcomeUnknown"
    kinds = [r["data"].get("event") for r in recorded["records"] if r["kind"] == "audit"]
    assert kinds.count("attempt.unknown") == ATTEMPTS
    assert not [r for r in recorded["records"] if r["kind"] == "transaction"]  # not "failed"

    # the same command again, same idempotency_key: refused, nothing sent
    again = _sop(sandbox, tmp_path, *_charge_args(customer, "order-1001"))
    assert again.returncode == 1, again.stdout + again.stderr
    assert again.stderr.count("\n") == 1 and again.stdout == ""
    assert run_id in again.stderr and f"sop resume {run_id}" in again.stderr
    assert len(_posts(sandbox, "/v1/payment_intents")) == ATTEMPTS
    assert len(_intents(sandbox, customer)) == 1

    # resume reconciles: the run finds the charge it made, and finishes
    done = _sop(sandbox, tmp_path, "resume", run_id, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["output"]["transaction_id"] == intent.id
    assert len(_intents(sandbox, customer)) == 1
    shown = json.loads(_sop(sandbox, tmp_path, "inspect", run_id, "--json").stdout)
    (txn,) = [r["data"] for r in shown["records"] if r["kind"] == "transaction"]
    assert txn["id"] == intent.id and txn["status"] == "succeeded"
    again = _sop(sandbox, tmp_path, "resume", run_id)
    assert again.returncode == 1 and "already succeeded" in again.stderr
    assert len(_intents(sandbox, customer)) == 1


def test_a_finished_charge_run_again_with_its_key_replays_and_never_charges_twice(
    sandbox: Sandbox, customer: str, tmp_path: Path
) -> None:
    first = _sop(sandbox, tmp_path, *_charge_args(customer, "order-2001"), "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    charged = json.loads(first.stdout)
    posts = len(_posts(sandbox, "/v1/payment_intents"))
    # the same command again (an agent retrying after a lost reply, a day later): the
    # recorded result, no request; Stripe forgets its keys after 24 hours, the journal not
    again = _sop(sandbox, tmp_path, *_charge_args(customer, "order-2001"), "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    replayed = json.loads(again.stdout)
    assert replayed["run_id"] == charged["run_id"] and replayed["output"] == charged["output"]
    assert any(w.startswith("replayed: ") for w in replayed["warnings"])
    assert len(_posts(sandbox, "/v1/payment_intents")) == posts
    assert len(_intents(sandbox, customer)) == 1
    # the same key for another amount: refused in one line, nothing sent
    other = _sop(
        sandbox,
        tmp_path,
        *_charge_args(customer, "order-2001")[:-4],
        "-p",
        "amount=2600",
        "-p",
        "idempotency_key=order-2001",
    )
    assert other.returncode == 1 and other.stderr.count("\n") == 1, other.stderr
    assert "other parameters" in other.stderr and charged["run_id"] in other.stderr
    assert len(_posts(sandbox, "/v1/payment_intents")) == posts


def test_a_charge_that_never_arrived_is_made_once_on_resume_with_the_same_key(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    # reset before localstripe: to the client exactly like a lost answer
    sandbox.inject("reset", match="/v1/payment_intents", method="POST", times=ATTEMPTS)
    params = {"operation": "charge", "customer_id": customer, "amount": 900}
    lost = run(SOP, params, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN, lost.errors
    assert _intents(sandbox, customer) == []
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    (intent,) = _intents(sandbox, customer)
    assert done.output["transaction_id"] == intent.id
    posts = _posts(sandbox, "/v1/payment_intents")
    assert len(posts) == ATTEMPTS + 1 and len({p["idempotency_key"] for p in posts}) == 1


def test_reconciliation_after_stripe_forgot_the_key_finds_the_charge_by_metadata(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("drop_after", match="/v1/payment_intents", method="POST", times=ATTEMPTS)
    params = {"operation": "charge", "customer_id": customer, "amount": 4100}
    lost = run(SOP, params, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN
    sandbox.advance_clock(25 * 3600)  # idempotency keys are kept 24 hours
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    (intent,) = _intents(sandbox, customer)  # the same key alone would have charged again
    assert done.output["transaction_id"] == intent.id
    assert len(_posts(sandbox, "/v1/payment_intents")) == ATTEMPTS  # found, not re-sent


def test_inconclusive_reconciliation_stays_unknown(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("drop_after", match="/v1/payment_intents", method="POST", times=ATTEMPTS)
    params = {"operation": "charge", "customer_id": customer, "amount": 1300}
    lost = run(SOP, params, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN
    # during the resume Stripe cannot even be asked: rate limited on every lookup
    sandbox.inject("429", match="/v1/payment_intents", method="GET", times=ATTEMPTS)
    still = resume(lost.run_id, registry=registry, journal=journal)
    assert still.status is RunStatus.UNKNOWN, still.errors
    assert journal.run(lost.run_id).status == "unknown"  # type: ignore[union-attr]
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert len(_intents(sandbox, customer)) == 1


def test_a_decline_stays_a_failure_and_a_lost_refund_is_reconciled(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    sandbox.inject("decline", match="/v1/payment_intents", method="POST")
    declined = run(
        SOP,
        {"operation": "charge", "customer_id": customer, "amount": 700},
        registry=registry,
        journal=journal,
    )
    assert declined.status is RunStatus.FAILED and "declined" in declined.errors[0].lower()
    charged = run(
        SOP,
        {"operation": "charge", "customer_id": customer, "amount": 5000},
        registry=registry,
        journal=journal,
    )
    pi = charged.output["transaction_id"]
    sandbox.inject("drop_after", match="/v1/refunds", method="POST", times=ATTEMPTS)
    refund = {"operation": "refund", "customer_id": customer, "payment_intent": pi, "amount": 500}
    lost = run(SOP, refund, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN, lost.errors
    assert len(sandbox.client().v1.refunds.list({"payment_intent": pi}).data) == 1
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    (made,) = sandbox.client().v1.refunds.list({"payment_intent": pi}).data
    assert done.output["transaction_id"] == made.id


def test_a_lost_subscription_in_a_child_run_makes_parent_and_child_unknown(
    sandbox: Sandbox, journal: Journal, registry: Registry, customer: str, fast_retries: None
) -> None:
    plan = sandbox.client().v1.plans.create(
        {"amount": 1500, "currency": "usd", "interval": "month", "product": {"name": "P"}}
    )
    sandbox.inject("drop_after", match="/v1/subscriptions", method="POST", times=ATTEMPTS)
    params = {"operation": "subscription", "customer_id": customer, "plan": plan.id}
    lost = run(SOP, params, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN, lost.errors
    (child,) = journal.children(lost.run_id)
    assert child.status == "unknown"
    subs = sandbox.client().v1.subscriptions.list({"customer": customer, "status": "all"}).data
    assert len(subs) == 1
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert done.output["subscription_id"] == subs[0].id
    assert journal.run(child.run_id).status == "succeeded"  # type: ignore[union-attr]
    subs = sandbox.client().v1.subscriptions.list({"customer": customer, "status": "all"}).data
    assert len(subs) == 1


# -- the engine, without Stripe: any handler can signal an unknown outcome ----------------

ENGINE_SOP = """\
# Unknown Demo

**Version**: 1.0.0

## Overview

Engine-level unknown outcomes.

## Parameters

- **idempotency_key** (string): Key for duplicate prevention
  - Default: Auto-generated UUID

## Steps

### 1. Send

**Actions**:
- MUST send the thing
- MUST report the thing

## Error Recovery

| Error Type | Recovery Procedure |
|------------|-------------------|
| Network timeout | Retry up to 2 times with backoff |
| Rate limited | Retry up to 2 times with backoff |
"""


@pytest.fixture
def engine_sop(tmp_path: Path) -> Path:
    path = tmp_path / "unknown-demo.sop.md"
    path.write_text(ENGINE_SOP, encoding="utf-8")
    return path


def _engine_registry(script: list[str], seen: list[tuple[int, bool, str]]) -> Registry:
    """``send the thing`` fails as ``script`` says, one entry per call, then succeeds."""
    reg = Registry()

    @reg.action("send the thing", timeout=1.0)
    def send(ctx: Any) -> None:
        seen.append((ctx.attempt, ctx.reconciling, ctx.idempotency_key()))
        step = script.pop(0) if script else "ok"
        if step == "unknown":
            raise OutcomeUnknown("Network timeout", "no answer")
        if step == "rate":
            raise SopFailure("Rate limited", retryable=True)
        if step == "declined":
            raise SopFailure("Card declined", retryable=False)
        if step == "bug":
            raise KeyError("amount")
        if step == "interrupt":  # Ctrl-C: the run is left interrupted
            raise KeyboardInterrupt
        if step == "confirm" and not ctx.confirmed:
            raise ConfirmationRequired("confirm the thing", {"thing": 1})
        if step == "hang":  # past the handler's timeout: abandoned, its outcome unknowable
            time.sleep(1.5)
        ctx.output["sent"] = True

    @reg.action("report the thing")
    def report(ctx: Any) -> None:
        ctx.output["reported"] = True

    return reg


@pytest.mark.parametrize(
    ("script", "status"),
    [
        (["unknown"] * 3, RunStatus.UNKNOWN),  # every attempt unknown
        (["unknown", "rate", "rate"], RunStatus.UNKNOWN),  # later "no" says nothing of the first
        (["unknown", "bug"], RunStatus.UNKNOWN),  # nor does a bug
        (["unknown", "declined"], RunStatus.FAILED),  # an answer for the same key settles it
        (["rate"] * 3, RunStatus.FAILED),  # nothing was ever in doubt
        (["unknown", "ok"], RunStatus.SUCCEEDED),
    ],
)
def test_the_outcome_stays_unknown_until_an_attempt_gets_an_answer(
    engine_sop: Path, journal: Journal, fast_retries: None, script: list[str], status: RunStatus
) -> None:
    seen: list[tuple[int, bool, str]] = []
    result = run(str(engine_sop), {}, registry=_engine_registry(script, seen), journal=journal)
    assert result.status is status, result.errors
    expected = {RunStatus.UNKNOWN: "unknown", RunStatus.FAILED: "failed"}.get(status, "passed")
    assert result.actions[0].status.value == expected
    if status is RunStatus.UNKNOWN:
        assert result.errors[0].startswith("outcome unknown after")
        assert result.actions[1].status is ActionStatus.SKIPPED  # the run stopped there
        assert "outcome of line" in (result.actions[1].reason or "")
    assert len({key for _, _, key in seen}) == 1


def test_resume_of_an_unknown_action_reconciles_with_the_same_key(
    engine_sop: Path, journal: Journal, fast_retries: None
) -> None:
    seen: list[tuple[int, bool, str]] = []
    script = ["unknown"] * 3 + ["unknown"] * 3 + ["ok"]
    registry = _engine_registry(script, seen)
    lost = run(str(engine_sop), {}, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN
    assert [reconciling for _, reconciling, _ in seen] == [False] * 3
    still = resume(lost.run_id, registry=registry, journal=journal)
    assert still.status is RunStatus.UNKNOWN  # reconciliation itself inconclusive
    done = resume(lost.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert done.output == {"sent": True, "reported": True}
    assert [reconciling for _, reconciling, _ in seen] == [False] * 3 + [True] * 4
    assert len({key for _, _, key in seen}) == 1
    statuses = [e.data.get("result", {}).get("status") for e in journal.events(lost.run_id)]
    assert statuses.count("unknown") >= 2 and statuses[-1] == "succeeded"


def test_a_reconciliation_that_times_out_stays_unknown(
    engine_sop: Path, journal: Journal, fast_retries: None
) -> None:
    seen: list[tuple[int, bool, str]] = []
    registry = _engine_registry(["unknown"] * 3 + ["hang"], seen)
    lost = run(str(engine_sop), {}, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN
    still = resume(lost.run_id, registry=registry, journal=journal)
    assert still.status is RunStatus.UNKNOWN, still.errors
    assert still.errors == ["outcome unknown: timed out after 1 s"]
    time.sleep(0.6)  # let the abandoned handler return before the next resume
    assert resume(lost.run_id, registry=registry, journal=journal).ok


def test_a_second_run_with_the_key_of_an_open_run_is_refused(
    engine_sop: Path, journal: Journal, fast_retries: None
) -> None:
    seen: list[tuple[int, bool, str]] = []
    registry = _engine_registry(["unknown"] * 3, seen)
    params = {"idempotency_key": "order-77"}
    lost = run(str(engine_sop), params, registry=registry, journal=journal)
    assert lost.status is RunStatus.UNKNOWN
    with pytest.raises(SopError, match=f"run {lost.run_id} .* unknown outcome.*sop resume"):
        run(str(engine_sop), params, registry=registry, journal=journal)
    assert len(seen) == 3  # nothing ran
    other = run(
        str(engine_sop), {"idempotency_key": "order-78"}, registry=registry, journal=journal
    )
    assert other.status is RunStatus.SUCCEEDED
    assert resume(lost.run_id, registry=registry, journal=journal).ok
    calls = len(seen)
    # the run is over: the same key and parameters replay its recorded result, run nothing
    again = run(str(engine_sop), params, registry=registry, journal=journal)
    assert again.status is RunStatus.SUCCEEDED and again.run_id == lost.run_id
    assert any(w.startswith(f"replayed: run {lost.run_id}") for w in again.warnings)
    assert len(seen) == calls and len(journal.runs()) == 2
    with sqlite3.connect(journal.path) as db:  # an index search, not a scan of every run
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE sop=?"
            " AND json_extract(params, '$.idempotency_key') IN (?, ?)",
            ("x", "a", "b"),
        ).fetchall()
    assert "runs_idempotency" in str(plan)


@pytest.mark.parametrize(
    ("step", "state"),
    [("confirm", "is waiting for confirmation"), ("interrupt", "was interrupted")],
)
def test_a_paused_or_interrupted_run_holds_its_key_too(
    engine_sop: Path, journal: Journal, step: str, state: str
) -> None:
    seen: list[tuple[int, bool, str]] = []
    registry = _engine_registry([step], seen)
    params = {"idempotency_key": f"order-{step}"}
    if step == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            run(str(engine_sop), params, registry=registry, journal=journal)
    else:
        assert run(str(engine_sop), params, registry=registry, journal=journal).pending
    (first,) = journal.runs()
    with pytest.raises(SopError, match=f"run {first.run_id} .* {state}; .*sop resume"):
        run(str(engine_sop), params, registry=registry, journal=journal)
    assert len(seen) == 1 and len(journal.runs()) == 1


# -- how Stripe errors are classified for writes ---------------------------------------------


def _connection_error(cause: BaseException) -> stripe.APIConnectionError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "Unexpected error communicating with Stripe"
            ) from exc
    except stripe.APIConnectionError as wrapped:
        return wrapped


def _status_error(status: int) -> stripe.StripeError:
    body = {"error": {"type": "api_error", "message": "m"}}
    return stripe.APIError("m", json_body=body, http_status=status)


REFUSED = requests.exceptions.ConnectionError(
    urllib3.exceptions.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/v1/payment_intents",
        urllib3.exceptions.NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
    )
)


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        (_connection_error(requests.exceptions.ReadTimeout("read timed out")), True),
        (_connection_error(requests.exceptions.ConnectionError("Connection aborted.")), True),
        (_connection_error(REFUSED), False),  # never connected: nothing was sent
        (_connection_error(requests.exceptions.ConnectTimeout("connect timed out")), False),
        (_status_error(500), True),
        (_status_error(503), True),
        (_status_error(409), True),  # a request with this key is still executing
        (stripe.RateLimitError("m", http_status=429), False),
        (stripe.InvalidRequestError("m", None, http_status=400), False),  # type: ignore[no-untyped-call]
        (stripe.AuthenticationError("m", http_status=401), False),
    ],
)
def test_only_writes_whose_request_may_have_acted_are_unknown(
    exc: stripe.StripeError, unknown: bool
) -> None:
    assert isinstance(map_stripe_error(exc, write=True), OutcomeUnknown) is unknown
    assert not isinstance(map_stripe_error(exc), OutcomeUnknown)  # reads never are


def test_a_refused_connection_is_a_retryable_failure_not_unknown() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gw = StripeGateway(make_client("sk_test_x", api_base=f"http://127.0.0.1:{port}"), 5.0, True)
    with pytest.raises(SopFailure) as caught:
        gw.create_payment_intent({"amount": 100, "currency": "usd"}, "key-1")
    assert not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.retryable is True


def test_an_unknown_run_over_mcp_is_a_tool_error_that_says_resume(
    engine_sop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    from engine.agents.mcp_server import SopService

    (tmp_path / "sops").mkdir()
    engine_sop.rename(tmp_path / "sops" / engine_sop.name)
    monkeypatch.chdir(tmp_path)
    registry = _engine_registry(["unknown"] * 3, [])
    service = SopService(registry=registry, journal=str(tmp_path / "j.db"), log=lambda _: None)
    outcome = service.call("unknown_demo", {})
    assert outcome.is_error and outcome.structured["status"] == "unknown"
    run_id = outcome.structured["run_id"]
    assert "Do not run it again" in outcome.text and f"sop resume {run_id}" in outcome.text
