"""Runs in one process share one Stripe gateway, and so one kept-alive connection.

The sandbox numbers the TCP connection each request arrives on, so these tests see
what a plain SDK script gets from its long-lived client: the second charge reuses the
first one's connection instead of opening its own (a new client, session and, against
Stripe, TLS handshake per run). A connection the server closed between runs is
replaced, not failed on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.binding.packs import load_handlers
from engine.binding.registry import Registry
from engine.errors import UsageError
from engine.execution.runner import RunResult, RunStatus, run
from engine.storage.journal import Journal
from handlers.payments.stripe_api import Gateways
from handlers.sandbox import Sandbox
from tests.support.standing_proof import new_customer

ROOT = Path(__file__).resolve().parents[2]
SOP = "payment-processing"


@pytest.fixture
def registry() -> Registry:
    return load_handlers(["handlers.payments"], project_dir=ROOT)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    monkeypatch.setenv("SOP_OUTBOX", str(tmp_path / "outbox"))
    with Journal(tmp_path / "journal.db") as jr:
        yield jr


def _charge(journal: Journal, registry: Registry, customer: str) -> RunResult:
    params = {"operation": "charge", "customer_id": customer, "amount": 700}
    result = run(SOP, params, registry=registry, journal=journal)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    return result


def _connections(requests: list[dict[str, Any]]) -> list[int]:
    return [r["connection"] for r in requests if r["path"].startswith("/v1/")]


def test_two_charges_in_one_process_use_one_connection(
    sandbox: Sandbox, journal: Journal, registry: Registry
) -> None:
    customer = new_customer(sandbox)
    before = len(sandbox.requests())
    _charge(journal, registry, customer)
    first = _connections(sandbox.requests()[before:])
    _charge(journal, registry, customer)
    both = _connections(sandbox.requests()[before:])
    assert len(first) == 4 and len(both) == 8  # customer, payment method, charges, intent
    assert len(set(both)) == 1, f"each run opened its own connection: {both}"


def test_a_connection_closed_between_runs_is_replaced(
    journal: Journal, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox restarts on the same address between two runs: the kept connection
    is dead, and the second run opens a new one without a failed attempt."""
    with Sandbox() as first:
        for name, value in first.env().items():
            monkeypatch.setenv(name, value)
        _charge(journal, registry, new_customer(first))
        port = first.port or int(first.url.rsplit(":", 1)[1])
    with Sandbox(port) as second:
        assert second.url == first.url
        result = _charge(journal, registry, new_customer(second))
        assert all(a.attempts <= 1 for a in result.actions), result.actions
        assert len(_connections(second.requests())) == 4 + 3  # the run's 4, set-up's 3


def test_concurrent_charges_share_the_gateway_safely(
    sandbox: Sandbox, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs in several threads at once (an MCP host's calls) send through one session:
    each charge succeeds with its own PaymentIntent, made once."""
    monkeypatch.setenv("SOP_OUTBOX", str(tmp_path / "outbox"))
    customers = [new_customer(sandbox) for _ in range(6)]
    results: dict[str, RunResult] = {}
    failures: list[BaseException] = []

    def charge(index: int, customer: str) -> None:
        try:
            with Journal(tmp_path / f"journal-{index}.db") as jr:
                results[customer] = _charge(jr, registry, customer)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=charge, args=item) for item in enumerate(customers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    intents = [r["path"] for r in sandbox.requests() if r["method"] == "POST"]
    assert intents.count("/v1/payment_intents") == len(customers)
    made = {r.output["transaction_id"] for r in results.values()}
    assert len(made) == len(customers) and set(results) == set(customers)


def test_gateways_are_kept_per_configuration() -> None:
    gateways = Gateways()
    sandbox_a = {"STRIPE_API_KEY": "sk_test_a", "STRIPE_API_BASE": "http://127.0.0.1:1"}
    sandbox_b = {"STRIPE_API_KEY": "sk_test_a", "STRIPE_API_BASE": "http://127.0.0.1:2"}
    gw = gateways.get(30.0, sandbox_a)
    assert gateways.get(30.0, dict(sandbox_a)) is gw
    assert gateways.get(5.0, sandbox_a) is not gw and gateways.get(5.0, sandbox_a).timeout == 5.0
    assert gateways.get(30.0, sandbox_b).api_base == "http://127.0.0.1:2"
    assert gateways.get(30.0, {**sandbox_a, "STRIPE_API_KEY": "sk_test_b"}) is not gw
    with pytest.raises(UsageError, match="STRIPE_API_KEY"):
        gateways.get(30.0, {})


def test_gateways_keep_a_bounded_number_of_configurations() -> None:
    gateways = Gateways()
    made = [
        gateways.get(30.0, {"STRIPE_API_KEY": "sk_test_a", "STRIPE_API_BASE": f"http://h{i}"})
        for i in range(Gateways.LIMIT + 2)
    ]
    again = gateways.get(30.0, {"STRIPE_API_KEY": "sk_test_a", "STRIPE_API_BASE": "http://h0"})
    assert again is not made[0]  # the oldest was dropped (and its connections closed)
    last = f"http://h{Gateways.LIMIT + 1}"
    assert gateways.get(30.0, {"STRIPE_API_KEY": "sk_test_a", "STRIPE_API_BASE": last}) is made[-1]


def test_the_gateway_sends_and_returns_what_the_typed_sdk_does(sandbox: Sandbox) -> None:
    """The gateway sends through ``raw_request`` and reads Stripe's answer as sent: the
    same requests as the SDK's typed services (the sandbox replays the typed call's
    PaymentIntent for the gateway's request under the same key, so path and parameters
    are the same), and the same dicts ``to_dict()`` makes of the typed answers."""
    client = sandbox.client()
    customer_id = new_customer(sandbox)
    gateway = Gateways().get(30.0)
    customer = client.v1.customers.retrieve(customer_id)
    listed = client.v1.payment_methods.list({"customer": customer_id, "type": "card"})
    pm = listed.data[0]
    assert gateway.get_customer(customer_id) == customer.to_dict()
    assert gateway.card_payment_methods(customer_id) == [m.to_dict() for m in listed.data]
    assert gateway.get_payment_method(pm.id) == client.v1.payment_methods.retrieve(pm.id).to_dict()
    assert gateway.get_customer("cus_missing0000") is None  # Stripe's 404
    assert gateway.get_payment_intent("pi_missing0000") is None

    params = {
        "amount": 700,
        "currency": "usd",
        "customer": customer_id,
        "payment_method": pm.id,
        "payment_method_types": ["card"],
        "confirm": True,
        "off_session": True,
        "metadata": {"sop_run_id": "run_typed", "sop_name": "payment-processing"},
    }
    typed = client.v1.payment_intents.create(params, {"idempotency_key": "typed-and-raw"})  # type: ignore[arg-type]
    before = len(sandbox.requests())
    made = gateway.create_payment_intent(params, "typed-and-raw")
    [sent] = sandbox.requests()[before:]
    assert (sent["method"], sent["path"]) == ("POST", "/v1/payment_intents")
    assert sent["replayed"] and sent.get("idempotency") != "mismatch", sent
    assert made == typed.to_dict() and made["status"] == "succeeded"
    assert (
        gateway.get_payment_intent(typed.id)
        == client.v1.payment_intents.retrieve(typed.id).to_dict()
    )
    charges = client.v1.charges.list({"customer": customer_id, "limit": 1}).data
    outcome = charges[0].to_dict().get("outcome") or None
    assert gateway.latest_charge_outcome(customer_id) == outcome
