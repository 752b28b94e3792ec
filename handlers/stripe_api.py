"""The Stripe client as a per-run service, and Stripe errors as SOP conditions.

One place knows how to talk to Stripe: the key comes from ``STRIPE_API_KEY``, the
base address from ``STRIPE_API_BASE`` (the local sandbox in tests and the demo),
the timeout from the SOP's own "set appropriate timeout (N seconds)" line, and the
SDK's own retries are off (``max_network_retries=0``) because retries belong to
the runner, which follows the SOP's Error Recovery table and re-sends the same
idempotency key on every attempt.

``map_stripe_error`` turns an SDK exception into a ``SopFailure`` whose condition
is the name of an Error Recovery row ("Card declined", "Rate limited", ...), so the
markdown decides what is retried, what is escalated and what the caller is told.

localstripe (the sandbox) rejects request fields it does not model (a
PaymentIntent's ``description`` and ``statement_descriptor``, a Refund's
``reason``); against a loopback ``http://`` base the gateway moves them into
metadata instead of failing the request (see ``StripeGateway.compat``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe

from engine.errors import SopFailure, UsageError
from engine.model import Sop
from engine.registry import Registry, default_registry

SERVICE = "stripe"
ENV_KEY = "STRIPE_API_KEY"
ENV_BASE = "STRIPE_API_BASE"
TIMEOUT_PATTERN = "set appropriate timeout ({seconds:d} seconds)"
#: What the Stripe SDK itself uses when nothing else is said.
SDK_DEFAULT_TIMEOUT = 80.0

# Error Recovery rows of the payment SOPs, by name (the conditions handlers signal).
CARD_DECLINED = "Card declined"
INSUFFICIENT_FUNDS = "Insufficient funds"
FRAUD_DETECTED = "Fraud detected"
RATE_LIMITED = "Rate limited"
NETWORK_TIMEOUT = "Network timeout"
CUSTOMER_NOT_FOUND = "Customer not found"
PAYMENT_FAILED = "payment fails"

#: Decline codes that mean "this looks like fraud": block and escalate, never retry.
FRAUD_DECLINE_CODES = frozenset(
    {
        "fraudulent",
        "stolen_card",
        "lost_card",
        "pickup_card",
        "merchant_blacklist",
        "security_violation",
    }
)
INSUFFICIENT_CODES = frozenset({"insufficient_funds", "card_velocity_exceeded"})


def _is_loopback(base: str | None) -> bool:
    if not base:
        return False
    parts = urlsplit(base)
    host = parts.hostname or ""
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sop_timeout(sop: Sop | None) -> float | None:
    """Seconds from the SOP's "set appropriate timeout (N seconds)" line, if it has one.

    The line is matched with the same registry machinery that binds it, so the
    number the author wrote is the number the HTTP client uses.
    """
    if sop is None:
        return None
    probe = Registry()
    probe.action(TIMEOUT_PATTERN)(lambda ctx, seconds: None)
    for line in sop.all_actions():
        found = probe.match(line.text)
        if found is not None:
            return float(found.captures["seconds"])
    return None


def make_client(
    api_key: str, *, api_base: str | None = None, timeout: float | None = None
) -> stripe.StripeClient:
    """A StripeClient that never retries on its own (the runner does, per the SOP)."""
    addresses: dict[str, str] = {}
    if api_base:
        base = api_base.rstrip("/")
        addresses = {"api": base, "files": base, "connect": base}
    return stripe.StripeClient(
        api_key,
        base_addresses=addresses,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout or SDK_DEFAULT_TIMEOUT),
    )


@dataclass
class StripeGateway:
    """The calls the payment handlers make, with errors already mapped to SOP conditions.

    ``compat`` is true against the local sandbox (a loopback ``http://`` base): fields
    localstripe does not model are moved into metadata rather than sent.
    """

    client: stripe.StripeClient
    timeout: float
    compat: bool = False
    api_base: str | None = None

    @classmethod
    def from_env(
        cls, timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> StripeGateway:
        env = os.environ if env is None else env
        key = env.get(ENV_KEY)
        if not key:
            raise UsageError(
                f"{ENV_KEY} environment variable is not set (prerequisite of the payment SOPs)"
            )
        base = env.get(ENV_BASE) or None
        seconds = timeout or SDK_DEFAULT_TIMEOUT
        return cls(
            make_client(key, api_base=base, timeout=seconds), seconds, _is_loopback(base), base
        )

    # -- reads (no idempotency key: GET is naturally idempotent) ----------------------------

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer, or None when Stripe has no such (or a deleted) customer."""
        try:
            with translate_errors():
                customer = self.client.v1.customers.retrieve(customer_id)
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise
        data = customer.to_dict()
        return None if data.get("deleted") else data

    def card_payment_methods(self, customer_id: str) -> list[dict[str, Any]]:
        with translate_errors():
            listed = self.client.v1.payment_methods.list({"customer": customer_id, "type": "card"})
        return [pm.to_dict() for pm in listed.data]

    def get_payment_method(self, pm_id: str) -> dict[str, Any] | None:
        try:
            with translate_errors():
                return self.client.v1.payment_methods.retrieve(pm_id).to_dict()
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise

    def get_payment_intent(self, pi_id: str) -> dict[str, Any] | None:
        try:
            with translate_errors():
                return self.client.v1.payment_intents.retrieve(pi_id).to_dict()
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise

    def refunds_for(self, pi_id: str) -> list[dict[str, Any]]:
        with translate_errors():
            listed = self.client.v1.refunds.list({"payment_intent": pi_id, "limit": 100})
        return [r.to_dict() for r in listed.data]

    def latest_charge_outcome(self, customer_id: str) -> dict[str, Any] | None:
        """The Radar outcome of the customer's latest charge, when Stripe reports one."""
        with translate_errors():
            listed = self.client.v1.charges.list({"customer": customer_id, "limit": 1})
        for charge in listed.data:
            outcome = charge.to_dict().get("outcome")
            if isinstance(outcome, dict) and outcome:
                return outcome
        return None

    def get_plan(self, plan_id: str) -> dict[str, Any] | None:
        try:
            with translate_errors():
                if plan_id.startswith("price_"):
                    return self.client.v1.prices.retrieve(plan_id).to_dict()
                return self.client.v1.plans.retrieve(plan_id).to_dict()
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise

    def get_subscription(self, sub_id: str) -> dict[str, Any] | None:
        try:
            with translate_errors():
                return self.client.v1.subscriptions.retrieve(sub_id).to_dict()
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise

    # -- writes: each takes the idempotency key the runner keeps stable across attempts ----

    def _fold(self, params: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        """In compat mode, move fields localstripe rejects into metadata (as strings)."""
        if not self.compat:
            return params
        metadata = dict(params.get("metadata") or {})
        for name in fields:
            if name in params:
                value = params.pop(name)
                if value is not None:
                    metadata[name] = str(value)
        params["metadata"] = metadata
        return params

    def create_payment_intent(
        self, params: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        body = self._fold(
            dict(params), ("description", "statement_descriptor_suffix", "receipt_email")
        )
        with translate_errors():
            intent = self.client.v1.payment_intents.create(
                body,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return intent.to_dict()

    def create_refund(self, params: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        body = self._fold(dict(params), ("reason",))
        with translate_errors():
            refund = self.client.v1.refunds.create(
                body,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return refund.to_dict()

    def create_subscription(
        self, params: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        with translate_errors():
            sub = self.client.v1.subscriptions.create(
                dict(params),  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        return sub.to_dict()

    def cancel_subscription(self, sub_id: str, idempotency_key: str) -> dict[str, Any]:
        with translate_errors():
            sub = self.client.v1.subscriptions.cancel(
                sub_id, None, {"idempotency_key": idempotency_key}
            )
        return sub.to_dict()


def _decline_code(exc: stripe.StripeError) -> str | None:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("decline_code")
    return str(code) if code else None


def map_stripe_error(exc: stripe.StripeError) -> SopFailure:
    """The SOP condition (an Error Recovery row) a Stripe SDK exception stands for.

    Card declines, insufficient funds and fraud are never retryable; rate limits,
    connection failures, timeouts, 409 (idempotent request still in flight) and
    5xx are. Anything else (a 400 the SOP has no row for) is a plain payment
    failure and is not retried either.
    """
    status = exc.http_status
    code = getattr(exc, "code", None)
    decline = _decline_code(exc)
    details: dict[str, Any] = {
        "http_status": status,
        "stripe_error": type(exc).__name__,
        "code": code,
        "decline_code": decline,
        "request_id": exc.request_id,
    }
    details = {k: v for k, v in details.items() if v is not None}
    message = exc.user_message or str(getattr(exc, "_message", None) or type(exc).__name__)
    if isinstance(exc, stripe.CardError) or status == 402:
        if decline in FRAUD_DECLINE_CODES or code in FRAUD_DECLINE_CODES:
            return SopFailure(FRAUD_DETECTED, message, retryable=False, details=details)
        if decline in INSUFFICIENT_CODES or code in INSUFFICIENT_CODES:
            return SopFailure(INSUFFICIENT_FUNDS, message, retryable=False, details=details)
        return SopFailure(CARD_DECLINED, message, retryable=False, details=details)
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        return SopFailure(RATE_LIMITED, message, retryable=True, details=details)
    if isinstance(exc, stripe.APIConnectionError) or status == 409 or (status or 0) >= 500:
        return SopFailure(NETWORK_TIMEOUT, message, retryable=True, details=details)
    return SopFailure(PAYMENT_FAILED, message, retryable=False, details=details)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Inside: Stripe SDK exceptions leave as ``SopFailure`` (see ``map_stripe_error``)."""
    try:
        yield
    except stripe.StripeError as exc:
        raise map_stripe_error(exc) from exc


@default_registry.service(SERVICE)
def stripe_service(ctx: Any) -> StripeGateway:
    """Per-run gateway; the timeout is the number in the running SOP's timeout line."""
    return StripeGateway.from_env(sop_timeout(getattr(ctx, "sop", None)))
