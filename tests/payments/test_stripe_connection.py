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
from handlers.payments.stripe_api import Gateways, body_of, items_of
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


def test_the_gateway_returns_what_stripe_sent(sandbox: Sandbox) -> None:
    """Objects are read from the SDK's parsed body, the same dicts ``to_dict()`` rebuilds
    (an item inside a list has no response of its own and is converted)."""
    client = sandbox.client()
    customer_id = new_customer(sandbox)
    customer = client.v1.customers.retrieve(customer_id)
    listed = client.v1.payment_methods.list({"customer": customer_id, "type": "card"})
    assert body_of(customer) == customer.to_dict() and body_of(customer)["id"] == customer_id
    assert items_of(listed) == [pm.to_dict() for pm in listed.data] and len(listed.data) == 1
    assert body_of(listed.data[0]) == listed.data[0].to_dict()
    gateway = Gateways().get(30.0)
    assert gateway.get_customer(customer_id) == customer.to_dict()
    assert gateway.card_payment_methods(customer_id) == [pm.to_dict() for pm in listed.data]
