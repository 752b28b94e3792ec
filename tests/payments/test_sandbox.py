"""The Stripe sandbox: real localstripe behind the idempotency + fault layer, driven
through the official stripe SDK. Nothing here is mocked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import stripe

from handlers.sandbox import Sandbox, SandboxError
from handlers.sandbox.faults import FaultTable, parse_fault
from handlers.sandbox.idempotency import IdempotencyCache, SavedResponse, fingerprint

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        PaymentIntentCreateParams,
        PaymentMethodCreateParams,
    )

ROOT = Path(__file__).resolve().parents[2]
VISA = "4242424242424242"


def card(number: str = VISA) -> PaymentMethodCreateParams:
    """A card PaymentMethod as localstripe wants it (all four fields, 16 digits)."""
    return {
        "type": "card",
        "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening_addresses(port: int) -> list[str]:
    """Local addresses (hex, from /proc/net/tcp*) of sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.append(f"{table}:{address}")
    return found


def error_body(exc: stripe.StripeError) -> dict[str, Any]:
    """The ``error`` object of a Stripe-shaped error response."""
    assert isinstance(exc.json_body, dict)
    error = exc.json_body["error"]
    assert isinstance(error, dict)
    return error


def customer_with_card(client: stripe.StripeClient) -> tuple[str, str]:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    pm = client.v1.payment_methods.create(params=card())
    client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    return customer.id, pm.id


def pi_params(customer: str, pm: str, amount: int = 5000) -> PaymentIntentCreateParams:
    return {
        "amount": amount,
        "currency": "usd",
        "customer": customer,
        "payment_method": pm,
        "confirm": True,
        "off_session": True,
    }


# --- pure parts: fault specs and the idempotency cache --------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fault": "418"}, "fault: must be one of"),
        ({"fault": "429", "match": "v1/x"}, "match: must be a path prefix"),
        ({"fault": "429", "method": "PATCH"}, "method: must be one of"),
        ({"fault": "429", "times": 0}, "times: must be an integer"),
        ({"fault": "429", "times": True}, "times: must be an integer"),
        ({"fault": "timeout", "seconds": -1}, "seconds: must be a positive number"),
        ({"fault": "429", "tiems": 2}, "unknown fault field(s): tiems"),
        ({"fault": "429", "decline_code": "fraudulent"}, "decline_code: a string, only with"),
    ],
)
def test_bad_fault_spec_names_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_fault(spec, 1)
    assert message in str(info.value)


def test_fault_table_matches_method_and_prefix_and_counts_down() -> None:
    table = FaultTable()
    table.add({"fault": "500", "match": "/v1/payment_intents", "method": "post", "times": 2})
    assert table.take("POST", "/v1/customers") is None
    assert table.take("GET", "/v1/payment_intents/pi_1") is None
    assert table.take("POST", "/v1/payment_intents/pi_1/confirm") is not None
    assert table.take("POST", "/v1/payment_intents") is not None
    assert table.take("POST", "/v1/payment_intents") is None
    assert table.armed() == []


def test_fingerprint_ignores_form_field_order_but_not_values() -> None:
    form = "application/x-www-form-urlencoded"
    a = fingerprint("POST", "/v1/refunds", "", form, b"amount=100&payment_intent=pi_1")
    b = fingerprint("POST", "/v1/refunds", "", form, b"payment_intent=pi_1&amount=100")
    c = fingerprint("POST", "/v1/refunds", "", form, b"payment_intent=pi_1&amount=101")
    d = fingerprint("POST", "/v1/charges", "", form, b"amount=100&payment_intent=pi_1")
    assert a == b
    assert len({a, c, d}) == 3


def test_cache_entries_expire_after_ttl() -> None:
    now = [1000.0]
    cache = IdempotencyCache(ttl=86400, clock=lambda: now[0])
    cache.save("sk", "k", "fp", SavedResponse(200, "application/json", b"{}", "req_1"))
    now[0] += 86399
    assert cache.lookup("sk", "k") is not None
    now[0] += 1
    assert cache.lookup("sk", "k") is None
    assert len(cache) == 0


# --- network: binding, persistence, lifecycle ---------------------------------------


def test_binds_loopback_only(sandbox: Sandbox) -> None:
    for url in (sandbox.url, sandbox.upstream_url):
        assert url.startswith("http://127.0.0.1:")
        found = listening_addresses(port_of(url))
        assert found == ["/proc/net/tcp:0100007F"], found  # 127.0.0.1, no IPv6, no 0.0.0.0


def test_no_disk_persistence(sandbox: Sandbox) -> None:
    pickle = Path("/tmp/localstripe.pickle")
    before = pickle.stat().st_mtime_ns if pickle.exists() else None
    sandbox.client().v1.customers.create(params={"email": "p@example.com"})
    after = pickle.stat().st_mtime_ns if pickle.exists() else None
    assert after == before


def test_stop_leaves_no_process_listening() -> None:
    box = Sandbox().start()
    ports = [port_of(box.url), port_of(box.upstream_url)]
    pid = box.pid
    assert pid is not None and box.running
    box.client().v1.customers.create()
    box.stop()
    assert all(refuses(p) for p in ports)
    assert not alive(pid)
    box.stop()  # idempotent


def test_sandbox_dies_with_its_parent() -> None:
    """A test process killed with SIGKILL leaves no orphan sandbox behind."""
    code = (
        "import json, time\n"
        "from handlers.sandbox import Sandbox\n"
        "box = Sandbox().start()\n"
        "print(json.dumps({'pid': box.pid, 'url': box.url}), flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    info = json.loads(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while alive(info["pid"]):
        if time.monotonic() > deadline:
            os.kill(info["pid"], signal.SIGKILL)
            pytest.fail("sandbox outlived its parent")
        time.sleep(0.05)
    assert refuses(port_of(info["url"]))


def test_start_on_busy_port_fails_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SandboxError, match=f"127.0.0.1:{port}: address already in use"):
            Sandbox(port).start()


def test_reset_empties_customers_keys_faults_and_log(sandbox: Sandbox) -> None:
    client = sandbox.client()
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    sandbox.inject("500", match="/v1/charges")
    sandbox.reset()
    assert client.v1.customers.list().data == []
    assert sandbox.faults() == []
    (logged,) = sandbox.requests()
    assert isinstance(logged.pop("connection"), int)  # numbered per TCP connection
    assert logged == {
        "method": "GET",
        "path": "/v1/customers",
        "idempotency_key": None,
        "status": 200,
        "upstream_status": 200,
        "forwarded": True,
        "replayed": False,
        "fault": None,
    }
    again = client.v1.customers.create(
        params={"email": "b@example.com"}, options={"idempotency_key": "k"}
    )
    assert again.email == "b@example.com"  # the key was forgotten


def test_the_log_numbers_the_connection_each_request_came_on(sandbox: Sandbox) -> None:
    first, second = sandbox.client(), sandbox.client()
    customer = first.v1.customers.create(params={"email": "c@example.com"})
    first.v1.customers.retrieve(customer.id)  # the same client: its kept-alive connection
    second.v1.customers.retrieve(customer.id)  # another client: a connection of its own
    numbers = [r["connection"] for r in sandbox.requests()]
    assert numbers[0] == numbers[1] != numbers[2], numbers


# --- idempotency -----------------------------------------------------------------------


def test_idempotent_replay_returns_same_object_once_executed(sandbox: Sandbox) -> None:
    client = sandbox.client()
    params: CustomerCreateParams = {"email": "ada@example.com", "metadata": {"order": "42"}}
    first = client.v1.customers.create(params=params, options={"idempotency_key": "cus-1"})
    second = client.v1.customers.create(params=params, options={"idempotency_key": "cus-1"})
    assert second.id == first.id
    assert second.to_dict() == first.to_dict()
    assert first.last_response is not None and second.last_response is not None
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.customers.list().data) == 1
    log = [e for e in sandbox.requests() if e["method"] == "POST"]
    assert [(e["idempotency_key"], e["forwarded"], e["replayed"]) for e in log] == [
        ("cus-1", True, False),
        ("cus-1", False, True),
    ]


def test_same_key_different_params_is_idempotency_error(sandbox: Sandbox) -> None:
    client = sandbox.client()
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "k"}
        )
    assert info.value.http_status == 400
    error = error_body(info.value)
    assert error["type"] == "idempotency_error"
    assert "'k'" in error["message"]
    assert sandbox.counts()["forwarded"] == 1
    assert len(client.v1.customers.list().data) == 1


def test_keys_are_scoped_per_api_key_and_expire_after_24h(sandbox: Sandbox) -> None:
    client = sandbox.client()
    other = stripe.StripeClient(
        "sk_test_other", base_addresses={"api": sandbox.url}, max_network_retries=0
    )
    a = client.v1.customers.create(options={"idempotency_key": "k"})
    b = other.v1.customers.create(options={"idempotency_key": "k"})
    assert a.id != b.id
    sandbox.advance_clock(24 * 3600 - 60)
    assert client.v1.customers.create(options={"idempotency_key": "k"}).id == a.id
    sandbox.advance_clock(60)
    assert client.v1.customers.create(options={"idempotency_key": "k"}).id != a.id


def test_validation_failure_is_not_saved_but_decline_is(sandbox: Sandbox) -> None:
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError):  # localstripe: 400 "Bad request"
        client.v1.payment_intents.create(
            params={"amount": 0, "currency": "usd"}, options={"idempotency_key": "pi-k"}
        )
    customer, _ = customer_with_card(client)
    declining = client.v1.payment_methods.create(params=card("4000000000000341"))
    params = pi_params(customer, declining.id)
    for _ in range(2):
        with pytest.raises(stripe.CardError) as info:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "pi-k"})
    assert info.value.code == "card_declined"
    assert info.value.headers is not None
    assert info.value.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.payment_intents.list().data) == 1


def test_concurrent_requests_with_one_key_reach_localstripe_once(sandbox: Sandbox) -> None:
    client = sandbox.client()
    # the first request to arrive is held 0.3 s inside the layer before it is forwarded
    sandbox.inject("delay", match="/v1/customers", method="POST", seconds=0.3)
    barrier = threading.Barrier(6)
    ids: list[str] = []

    def create() -> None:
        barrier.wait()
        ids.append(client.v1.customers.create(options={"idempotency_key": "same"}).id)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 6 and len(set(ids)) == 1
    counts = sandbox.counts()
    assert (counts["forwarded"], counts["replayed"]) == (1, 5)
    assert len(client.v1.customers.list().data) == 1


def test_overlong_key_is_refused_before_localstripe(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="at most 255"):
        sandbox.client().v1.customers.create(options={"idempotency_key": "k" * 256})
    assert sandbox.counts()["forwarded"] == 0


def test_get_requests_ignore_idempotency_keys(sandbox: Sandbox) -> None:
    client = sandbox.client()
    customer = client.v1.customers.create()
    client.v1.customers.update(customer.id, params={"name": "Ada"})
    again = client.v1.customers.retrieve(customer.id, options={"idempotency_key": "g"})
    client.v1.customers.update(customer.id, params={"name": "Bob"})
    latest = client.v1.customers.retrieve(customer.id, options={"idempotency_key": "g"})
    assert (again.name, latest.name) == ("Ada", "Bob")


# --- faults ------------------------------------------------------------------------


def test_429_is_rate_limit_error_and_not_forwarded(sandbox: Sandbox) -> None:
    client = sandbox.client()
    sandbox.inject("429", match="/v1/customers", method="POST")
    with pytest.raises(stripe.RateLimitError) as info:
        client.v1.customers.create(options={"idempotency_key": "k"})
    assert info.value.http_status == 429
    assert error_body(info.value)["code"] == "rate_limit"
    retried = client.v1.customers.create(options={"idempotency_key": "k"})
    assert retried.last_response is not None
    assert "Idempotent-Replayed" not in retried.last_response.headers
    log = sandbox.requests()
    assert [(e["status"], e["fault"], e["forwarded"]) for e in log] == [
        (429, "429", False),
        (200, None, True),
    ]
    assert sandbox.counts()["faults"] == {"429": 1}


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_api_error_and_not_forwarded(sandbox: Sandbox, status: int) -> None:
    client = sandbox.client()
    sandbox.inject(str(status), match="/v1/customers", times=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as info:
            client.v1.customers.create()
        assert info.value.http_status == status
    client.v1.customers.create()  # the fault was used up
    assert sandbox.counts()["faults"] == {str(status): 2}
    assert sandbox.counts()["forwarded"] == 1
    assert len(client.v1.customers.list().data) == 1


def test_reset_is_a_connection_error_before_acting(sandbox: Sandbox) -> None:
    client = sandbox.client()
    sandbox.inject("reset", match="/v1/customers", method="POST")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(options={"idempotency_key": "k"})
    assert client.v1.customers.list().data == []
    entry = sandbox.requests()[0]
    assert (entry["fault"], entry["status"], entry["forwarded"]) == ("reset", None, False)


def test_timeout_holds_longer_than_the_client_waits(sandbox: Sandbox) -> None:
    client = sandbox.client(timeout=0.3)
    sandbox.inject("timeout", match="/v1/customers", method="POST", seconds=5)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as info:
        client.v1.customers.create()
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 5  # waited for its own timeout, not for the 5 s fault
    assert "timed out" in str(info.value.__cause__ or info.value).lower() or info.value.should_retry
    assert client.v1.customers.list().data == []
    assert sandbox.counts()["faults"] == {"timeout": 1}


def test_drop_after_acts_then_resets_and_retry_replays(sandbox: Sandbox) -> None:
    client = sandbox.client()
    customer, pm = customer_with_card(client)
    sandbox.inject("drop_after", match="/v1/payment_intents", method="POST")
    params = pi_params(customer, pm)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "charge-1"})
    retried = client.v1.payment_intents.create(
        params=params, options={"idempotency_key": "charge-1"}
    )
    assert retried.status == "succeeded"
    assert retried.last_response is not None
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"
    intents = client.v1.payment_intents.list().data
    assert [pi.id for pi in intents] == [retried.id]
    posts = [e for e in sandbox.requests() if e["method"] == "POST"]
    dropped, replayed = [e for e in posts if e["path"] == "/v1/payment_intents"]
    assert (dropped["fault"], dropped["status"], dropped["upstream_status"]) == (
        "drop_after",
        None,
        200,
    )
    assert replayed["replayed"] and not replayed["forwarded"]


@pytest.mark.parametrize(
    ("decline_code", "message"),
    [("insufficient_funds", "insufficient funds"), ("fraudulent", "was declined")],
)
def test_decline_is_a_card_error_with_decline_code(
    sandbox: Sandbox, decline_code: str, message: str
) -> None:
    client = sandbox.client()
    customer, pm = customer_with_card(client)
    sandbox.inject("decline", match="/v1/payment_intents", decline_code=decline_code)
    with pytest.raises(stripe.CardError, match=message) as info:
        client.v1.payment_intents.create(params=pi_params(customer, pm))
    assert info.value.http_status == 402
    assert (info.value.code, error_body(info.value)["decline_code"]) == (
        "card_declined",
        decline_code,
    )
    assert client.v1.payment_intents.list().data == []


def test_bad_fault_through_the_control_api_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="fault: must be one of"):
        sandbox.inject("teapot")
    assert sandbox.faults() == []


# --- what localstripe supports (the payments handlers rely on this) ------------------


def test_charge_refund_flow_that_localstripe_supports(sandbox: Sandbox) -> None:
    client = sandbox.client()
    customer, pm = customer_with_card(client)
    settings = client.v1.customers.retrieve(customer).invoice_settings
    assert settings is not None and settings.default_payment_method == pm
    pi = client.v1.payment_intents.create(params=pi_params(customer, pm, 5000))
    assert pi.status == "succeeded"
    assert client.v1.payment_intents.retrieve(pi.id).amount == 5000
    partial = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1500})
    rest = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert (partial.status, partial.amount, rest.amount) == ("succeeded", 1500, 5000)
    # gap: localstripe refunds the full charge again and never checks the total
    with pytest.raises(stripe.InvalidRequestError, match="Unexpected reason"):
        client.v1.refunds.create(params={"payment_intent": pi.id, "reason": "duplicate"})


def test_declines_localstripe_emulates(sandbox: Sandbox) -> None:
    client = sandbox.client()
    customer, _ = customer_with_card(client)
    at_attach = client.v1.payment_methods.create(params=card("4000000000000002"))
    with pytest.raises(stripe.CardError, match="declined"):
        client.v1.payment_methods.attach(at_attach.id, params={"customer": customer})
    at_charge = client.v1.payment_methods.create(params=card("4000000000000341"))
    client.v1.payment_methods.attach(at_charge.id, params={"customer": customer})
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=pi_params(customer, at_charge.id))
    assert info.value.code == "card_declined"


def test_subscription_needs_product_and_plan(sandbox: Sandbox) -> None:
    client = sandbox.client()
    customer, _ = customer_with_card(client)
    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"amount": 1500, "currency": "usd", "interval": "month", "product": product.id}
    )
    with pytest.raises(stripe.InvalidRequestError):  # no Prices API: items[].price is refused
        client.v1.subscriptions.create(params={"customer": customer, "items": [{"price": plan.id}]})
    sub = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"plan": plan.id}]}
    )
    assert sub.status == "active"
    assert client.v1.subscriptions.cancel(sub.id).status == "canceled"


def test_cli_runs_in_foreground_and_stops_on_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "sandbox", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    assert f"http://127.0.0.1:{port}" in lines[0]
    assert lines[1].strip() == f"export STRIPE_API_BASE=http://127.0.0.1:{port}"
    assert lines[2].startswith("export STRIPE_API_KEY=sk_test_")
    key = lines[2].strip().split("=", 1)[1]
    client = stripe.StripeClient(key, base_addresses={"api": f"http://127.0.0.1:{port}"})
    assert client.v1.customers.create().id.startswith("cus_")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out
    assert refuses(port)


def test_cli_busy_port_is_one_line_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "engine", "sandbox", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"sop: error: sandbox: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
