"""What only real Stripe can show, and what stands in for it here.

This machine has no route to api.stripe.com, so:
- ``test_examples_against_stripe_test_mode`` runs the payment SOP's Examples against real
  Stripe *test mode* when ``STRIPE_LIVE_TEST_KEY`` (an ``sk_test_`` key) is set, and is
  skipped otherwise;
- the other tests use a stand-in for live Stripe (a small local HTTP server that records
  requests: a mock, because live Stripe cannot run here). They check what the gateway
  sends when it is *not* talking to the local sandbox: real Stripe fields, not the
  metadata workaround localstripe needs, and the idempotency key on every write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest

from handlers.payments.stripe_api import StripeGateway, make_client

ROOT = Path(__file__).resolve().parents[2]


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.seen.append({"path": self.path, "headers": dict(self.headers), "form": parse_qs(body)})
        reply = json.dumps(
            {"id": "pi_live123", "object": "payment_intent", "amount": 2500, "status": "succeeded"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_without_a_base_address_the_gateway_talks_real_stripe_fields() -> None:
    gateway = StripeGateway.from_env(env={"STRIPE_API_KEY": "sk_test_not_used"})
    assert gateway.compat is False  # no loopback sandbox: no localstripe workarounds


def test_live_mode_sends_description_as_a_field_with_the_idempotency_key(stand_in: str) -> None:
    # compat=False is what from_env picks for api.stripe.com; the base is the stand-in.
    gateway = StripeGateway(make_client("sk_test_x", api_base=stand_in, timeout=5), 5.0, False)
    gateway.create_payment_intent(
        {"amount": 2500, "currency": "usd", "customer": "cus_A", "description": "Monthly"},
        "key-123",
    )
    (request,) = _Recorder.seen
    assert request["path"] == "/v1/payment_intents"
    assert request["headers"]["Idempotency-Key"] == "key-123"
    assert request["form"]["description"] == ["Monthly"]
    assert "metadata[description]" not in request["form"]


@pytest.mark.skipif(
    not os.environ.get("STRIPE_LIVE_TEST_KEY", "").startswith("sk_test_"),
    reason="set STRIPE_LIVE_TEST_KEY=sk_test_... (real Stripe test mode; no network here)",
)
def test_examples_against_stripe_test_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SOP_"))}
    env.update(
        STRIPE_API_KEY=os.environ["STRIPE_LIVE_TEST_KEY"],
        SOP_TEST_SANDBOX="0",
        SOP_OUTBOX=str(tmp_path / "outbox"),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "test",
            "payment-processing",
            "--journal",
            str(tmp_path / "j.db"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 0 failed" in done.stdout
