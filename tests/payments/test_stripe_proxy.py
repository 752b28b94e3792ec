"""A proxy named by the environment still carries the gateway's requests.

The gateway picks its proxy once, when it is made, instead of letting requests rescan
the environment on every request; these tests keep that from losing the user's
``HTTP_PROXY`` / ``NO_PROXY``. Two real local HTTP servers stand in for Stripe and for a
forward proxy, and each records the request lines it receives: a proxied request
arrives at the proxy in absolute form (``GET http://host:port/v1/... HTTP/1.1``), a
direct one at "Stripe" in origin form (``GET /v1/...``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from handlers.payments.stripe_api import PROXY_VARIABLES, Gateways

NOT_FOUND = {"error": {"type": "invalid_request_error", "message": "No such customer"}}


class Recorder:
    """An HTTP server on a free loopback port that answers every GET with Stripe's 404."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        lines = self.lines

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines.append(self.requestline)
                body = json.dumps(NOT_FOUND).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads ``lines``."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stripe_and_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, Recorder]]:
    for name in PROXY_VARIABLES:  # whatever this machine has set
        monkeypatch.delenv(name, raising=False)
    stripe, proxy = Recorder(), Recorder()
    try:
        yield stripe, proxy
    finally:
        stripe.close()
        proxy.close()


def test_a_proxy_in_the_environment_carries_the_requests(
    stripe_and_proxy: tuple[Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stripe, proxy = stripe_and_proxy
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    env = {"STRIPE_API_KEY": "sk_test_proxy", "STRIPE_API_BASE": stripe.url}
    gateway = Gateways().get(30.0, env)
    assert gateway.get_customer("cus_proxied") is None  # Stripe's 404, through the proxy
    assert gateway.get_customer("cus_again") is None
    assert proxy.lines == [
        f"GET {stripe.url}/v1/customers/cus_proxied HTTP/1.1",
        f"GET {stripe.url}/v1/customers/cus_again HTTP/1.1",
    ]
    assert stripe.lines == []


def test_no_proxy_and_a_changed_environment_are_followed(
    stripe_and_proxy: tuple[Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NO_PROXY`` covering Stripe's host sends directly; setting or clearing a proxy
    variable between runs gives the next run a gateway that follows it."""
    stripe, proxy = stripe_and_proxy
    gateways = Gateways()
    env = {"STRIPE_API_KEY": "sk_test_proxy", "STRIPE_API_BASE": stripe.url}
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert gateways.get(30.0, env).get_customer("cus_direct") is None
    assert stripe.lines == ["GET /v1/customers/cus_direct HTTP/1.1"] and proxy.lines == []

    monkeypatch.delenv("no_proxy")
    assert gateways.get(30.0, env).get_customer("cus_via_proxy") is None
    assert proxy.lines == [f"GET {stripe.url}/v1/customers/cus_via_proxy HTTP/1.1"]

    monkeypatch.delenv("http_proxy")
    assert gateways.get(30.0, env).get_customer("cus_direct_again") is None
    assert stripe.lines[-1] == "GET /v1/customers/cus_direct_again HTTP/1.1"
    assert len(proxy.lines) == 1
