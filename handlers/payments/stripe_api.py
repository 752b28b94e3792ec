"""The Stripe client as a service shared by the runs of a process, and Stripe errors
as SOP conditions.

One place knows how to talk to Stripe: the key comes from ``STRIPE_API_KEY``, the
base address from ``STRIPE_API_BASE`` (the local sandbox in tests and the demo),
the timeout from the SOP's own "set appropriate timeout (N seconds)" line, and the
SDK's own retries are off (``max_network_retries=0``) because retries belong to
the runner, which follows the SOP's Error Recovery table and re-sends the same
idempotency key on every attempt. Runs with the same configuration share one
gateway and its open connection (``Gateways``). A proxy named by the environment
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, either case) is chosen for
the base address once, when the gateway is made, not on every request
(``new_session``). Requests go through the SDK's ``raw_request`` and answers stay
Stripe's parsed JSON (``StripeGateway.call``): the handlers read dicts, never SDK objects.

``map_stripe_error`` turns an SDK exception into a ``SopFailure`` whose condition
is the name of an Error Recovery row ("Card declined", "Rate limited", ...), so the
markdown decides what is retried, what is escalated and what the caller is told.

A write (POST with an idempotency key) whose request may have reached Stripe without
an answer coming back is ``OutcomeUnknown``, not a failure: a read timeout, a
connection reset or closed after the request was sent, a 5xx (Stripe: "treat the
result of a 500 as indeterminate") and a 409 (a request with this key is still being
executed). It is retried under the same "Network timeout" row with the same key
(Stripe replays what it did, never does it twice); if the attempts run out, the run
ends ``unknown`` and ``sop resume`` reconciles it. Errors that prove nothing was
done stay plain failures: a connection that was never made (refused, DNS, connect
timeout: retryable), a 429 (rejected before execution: retryable), and every other
4xx with a Stripe error body (400, 401, 402 declines, 403, 404: final). Reads are
never ``OutcomeUnknown``: repeating a GET changes nothing.

Reconciling (``ctx.reconciling``): the same key is sent again, but Stripe forgets
keys after 24 hours, so each write first looks for the object the run already made,
by the ``sop_run_id`` the request put in its metadata (``find_payment_intent``,
``find_refund``, ``find_subscription``; a list call, at most ``LOOKUP_LIMIT`` objects
scanned, newest first).

localstripe (the sandbox) rejects request fields it does not model (a
PaymentIntent's ``description`` and ``statement_descriptor``, a Refund's
``reason``); against a loopback ``http://`` base the gateway moves them into
metadata instead of failing the request (see ``StripeGateway.compat``).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit

from engine.binding.registry import Registry, default_registry
from engine.errors import OutcomeUnknown, SopFailure, UsageError
from engine.model import Sop

if TYPE_CHECKING:
    import requests
    import stripe

    from engine import RunContext

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
#: How many objects a reconciliation lookup scans (newest first) for the run's metadata.
LOOKUP_LIMIT = 1000
#: The variables requests reads to pick a proxy for an http(s) address (see
#: ``new_session``); a gateway is kept while they are unchanged.
PROXY_VARIABLES = tuple(
    name
    for lower in ("https_proxy", "http_proxy", "all_proxy", "no_proxy", "request_method")
    for name in (lower, lower.upper())
)


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
    number the author wrote is the number the HTTP client uses. Read once per SOP
    (kept with the immutable Sop, ~0.2 ms a run otherwise).
    """
    if sop is None:
        return None
    return sop.derived(("payments", "stripe-timeout"), lambda: _timeout_line(sop))


def _timeout_line(sop: Sop) -> float | None:
    probe = Registry()
    probe.action(TIMEOUT_PATTERN)(lambda ctx, seconds: None)
    for line in sop.all_actions():
        found = probe.match(line.text)
        if found is not None:
            return float(found.captures["seconds"])
    return None


def environment_proxies(api_base: str | None) -> dict[str, str]:
    """The proxies the process environment names for ``api_base`` (none when ``NO_PROXY``
    covers its host), as requests itself picks them."""
    import stripe  # lazy, see make_client
    from requests.utils import get_environ_proxies

    return get_environ_proxies(api_base or stripe.DEFAULT_API_BASE)


def new_session(api_base: str | None) -> requests.Session:
    """An HTTP session for ``api_base`` whose proxy was picked from the environment now.

    A session that trusts the environment rescans all of ``os.environ`` twice on every
    request (~10% of a charge's instructions) for an answer that only changes with the
    variables ``Gateways`` keys its gateways by. It also stops ``~/.netrc`` from
    replacing the Stripe key's ``Authorization`` header.
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies = environment_proxies(api_base)
    return session


def make_client(
    api_key: str,
    *,
    api_base: str | None = None,
    timeout: float | None = None,
    session: requests.Session | None = None,
) -> stripe.StripeClient:
    """A StripeClient that never retries on its own (the runner does, per the SOP).

    It has one HTTP session (``session``, else ``new_session``) for every thread that uses it:
    the SDK's ``RequestsClient`` otherwise opens a session per thread, and each run
    walks in a thread of its own, so a client kept between runs would still open a new
    connection on every run.
    """
    import stripe  # lazy: only a payment run pays the ~0.3 s import of the SDK

    addresses: dict[str, str] = {}
    if api_base:
        base = api_base.rstrip("/")
        addresses = {"api": base, "files": base, "connect": base}
    return stripe.StripeClient(
        api_key,
        base_addresses=addresses,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(
            timeout=timeout or SDK_DEFAULT_TIMEOUT, session=session or new_session(api_base)
        ),
    )


def object_path(collection: str, object_id: str) -> str:
    """``/v1/customers/cus_123``: the id quoted as the SDK's typed services quote it."""
    return f"{collection}/{quote_plus(object_id)}"


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
    #: The HTTP session ``client`` sends through, when the gateway made it (``close``).
    session: requests.Session | None = field(default=None, repr=False, compare=False)

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
        session = new_session(base)
        client = make_client(key, api_base=base, timeout=seconds, session=session)
        return cls(client, seconds, _is_loopback(base), base, session)

    def close(self) -> None:
        """Close the connections this gateway's session keeps open."""
        if self.session is not None:
            self.session.close()

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One request to Stripe; its answer as Stripe sent it (the parsed JSON body).

        Sent by ``raw_request``, the same request the SDK's typed services send (the
        same encoder, headers, client and error classes), without building the SDK's
        ``StripeObject`` tree from the answer, which the pack never reads: that was
        7.8M instructions for a charge's four answers, a sixth of the charge. A write
        (``idempotency_key``) whose outcome may be unknown is ``OutcomeUnknown``.
        """
        options = {} if idempotency_key is None else {"idempotency_key": idempotency_key}
        with translate_errors(write=idempotency_key is not None):
            response = self.client.raw_request(method, path, **(params or {}), **options)
        data = response.data
        return data if isinstance(data, dict) else {}

    def _found(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when Stripe has no such object (404)."""
        try:
            return self.call("get", path)
        except SopFailure as failure:
            if failure.details.get("http_status") == 404:
                return None
            raise

    def _listed(self, collection: str, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The objects of the first page of a list."""
        page = self.call("get", collection, query).get("data")
        return [item for item in page if isinstance(item, dict)] if isinstance(page, list) else []

    # -- reads (no idempotency key: GET is naturally idempotent) ----------------------------

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer, or None when Stripe has no such (or a deleted) customer."""
        customer = self._found(object_path("/v1/customers", customer_id))
        return None if customer is None or customer.get("deleted") else customer

    def card_payment_methods(self, customer_id: str) -> list[dict[str, Any]]:
        return self._listed("/v1/payment_methods", {"customer": customer_id, "type": "card"})

    def get_payment_method(self, pm_id: str) -> dict[str, Any] | None:
        return self._found(object_path("/v1/payment_methods", pm_id))

    def get_payment_intent(self, pi_id: str) -> dict[str, Any] | None:
        return self._found(object_path("/v1/payment_intents", pi_id))

    def refunds_for(self, pi_id: str) -> list[dict[str, Any]]:
        return self._listed("/v1/refunds", {"payment_intent": pi_id, "limit": 100})

    def latest_charge_outcome(self, customer_id: str) -> dict[str, Any] | None:
        """The Radar outcome of the customer's latest charge, when Stripe reports one."""
        for charge in self._listed("/v1/charges", {"customer": customer_id, "limit": 1}):
            outcome = charge.get("outcome")
            if isinstance(outcome, dict) and outcome:
                return outcome
        return None

    def get_plan(self, plan_id: str) -> dict[str, Any] | None:
        collection = "/v1/prices" if plan_id.startswith("price_") else "/v1/plans"
        return self._found(object_path(collection, plan_id))

    def get_subscription(self, sub_id: str) -> dict[str, Any] | None:
        return self._found(object_path("/v1/subscriptions", sub_id))

    # -- reconciliation: what a run already made, by the sop_run_id in its metadata --------

    def _made_by(self, listed: Any, run_id: str) -> dict[str, Any] | None:
        for index, item in enumerate(listed.auto_paging_iter()):
            if index >= LOOKUP_LIMIT:
                return None
            data: dict[str, Any] = item.to_dict()
            if (data.get("metadata") or {}).get("sop_run_id") == run_id:
                return data
        return None

    def find_payment_intent(self, run_id: str, customer: str) -> dict[str, Any] | None:
        """The PaymentIntent run ``run_id`` created for ``customer``, if any."""
        query: dict[str, Any] = {"limit": 100}
        if not self.compat:  # localstripe lists PaymentIntents without a customer filter
            query["customer"] = customer
        with translate_errors():
            listed = self.client.v1.payment_intents.list(query)  # type: ignore[arg-type]
            return self._made_by(listed, run_id)

    def find_refund(self, run_id: str, payment_intent: str) -> dict[str, Any] | None:
        """The refund run ``run_id`` made on ``payment_intent``, if any."""
        with translate_errors():
            listed = self.client.v1.refunds.list({"payment_intent": payment_intent, "limit": 100})
            return self._made_by(listed, run_id)

    def find_subscription(self, run_id: str, customer: str) -> dict[str, Any] | None:
        """The subscription run ``run_id`` created for ``customer`` (any status), if any."""
        with translate_errors():
            listed = self.client.v1.subscriptions.list(
                {"customer": customer, "status": "all", "limit": 100}
            )
            return self._made_by(listed, run_id)

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
        return self.call("post", "/v1/payment_intents", body, idempotency_key=idempotency_key)

    def create_refund(self, params: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        body = self._fold(dict(params), ("reason",))
        return self.call("post", "/v1/refunds", body, idempotency_key=idempotency_key)

    def create_subscription(
        self, params: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        return self.call("post", "/v1/subscriptions", params, idempotency_key=idempotency_key)

    def cancel_subscription(self, sub_id: str, idempotency_key: str) -> dict[str, Any]:
        path = object_path("/v1/subscriptions", sub_id)
        return self.call("delete", path, idempotency_key=idempotency_key)


def _error_field(exc: stripe.StripeError, name: str) -> str | None:
    """A field of the error body Stripe sent (``type``, ``decline_code``), if any."""
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    value = error.get(name)
    return str(value) if value else None


def never_sent(exc: stripe.StripeError) -> bool:
    """True when the request provably never left: no connection was made (refused,
    name resolution, connect timeout). Anything else after a write may have acted."""
    import requests
    import urllib3

    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", None)
        # urllib3: NewConnectionError (refused, DNS) is a ConnectTimeoutError
        return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
    return False


def outcome_unknown(exc: stripe.StripeError) -> bool:
    """A write's outcome is unknown: sent, and no answer that says what Stripe did."""
    import stripe  # lazy, see make_client

    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError):
        return not never_sent(exc)
    return status == 409 or (status or 0) >= 500


def _network_reason(exc: stripe.StripeError) -> str:
    cause = exc.__cause__
    if cause is None:
        return type(exc).__name__ if exc.http_status is None else f"HTTP {exc.http_status}"
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def map_stripe_error(exc: stripe.StripeError, *, write: bool = False) -> SopFailure:
    """The SOP condition (an Error Recovery row) a Stripe SDK exception stands for.

    Card declines, insufficient funds and fraud are never retryable; rate limits,
    connection failures, timeouts, 409 (idempotent request still in flight) and
    5xx are. Anything else (a 400 the SOP has no row for) is a plain payment
    failure and is not retried either. With ``write``, a failure that leaves the
    outcome unknown (``outcome_unknown``) is an ``OutcomeUnknown`` of the same
    "Network timeout" row.
    """
    import stripe  # lazy, see make_client

    status = exc.http_status
    code = getattr(exc, "code", None)
    decline = _error_field(exc, "decline_code")
    details: dict[str, Any] = {
        "http_status": status,
        "stripe_error": type(exc).__name__,
        "error_type": _error_field(exc, "type"),
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
    if write and outcome_unknown(exc):
        reason = _network_reason(exc)
        return OutcomeUnknown(
            NETWORK_TIMEOUT,
            f"no answer from Stripe; the request may have been executed ({reason})",
            details=details,
        )
    if isinstance(exc, stripe.APIConnectionError) or status == 409 or (status or 0) >= 500:
        return SopFailure(NETWORK_TIMEOUT, message, retryable=True, details=details)
    return SopFailure(PAYMENT_FAILED, message, retryable=False, details=details)


@contextmanager
def translate_errors(*, write: bool = False) -> Iterator[None]:
    """Inside: Stripe SDK exceptions leave as ``SopFailure`` (see ``map_stripe_error``);
    ``write``: around a POST whose outcome may be unknown (``OutcomeUnknown``)."""
    import stripe  # lazy, see make_client

    try:
        yield
    except stripe.StripeError as exc:
        raise map_stripe_error(exc, write=write) from exc


class Gateways:
    """One gateway per configuration (key, base address, timeout, the process's proxy
    variables) for the life of the process.

    Runs share it, so the connection to Stripe stays open between them (HTTP keep-alive),
    as a plain SDK script's long-lived client does. A gateway per run paid for a new
    client, session and TCP connection (TLS too, against Stripe) on every charge. A
    kept connection that the server closed meanwhile is replaced by urllib3 before it is
    used; a write that still fails on it is ``OutcomeUnknown`` and retried with the same
    idempotency key, like any other lost answer. Keyed by process too: a forked child
    never uses its parent's sockets. At most ``LIMIT`` configurations are kept (tests
    start a sandbox per module); the oldest one's connections are closed.
    """

    LIMIT = 8

    def __init__(self) -> None:
        self._made: OrderedDict[tuple[object, ...], StripeGateway] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> StripeGateway:
        """The gateway the environment configures (the same object while it is unchanged).

        Key and base come from ``env``; proxies, as requests has always read them, from
        the process environment (a few lookups a run, where requests scanned it all
        twice a request).
        """
        env = os.environ if env is None else env
        proxies = tuple(os.environ.get(name) for name in PROXY_VARIABLES)
        config = (os.getpid(), env.get(ENV_KEY), env.get(ENV_BASE), timeout, proxies)
        with self._lock:
            found = self._made.get(config)
            if found is not None:
                self._made.move_to_end(config)
                return found
        made = StripeGateway.from_env(timeout, env)  # outside the lock: imports the SDK
        with self._lock:
            kept = self._made.setdefault(config, made)
            while len(self._made) > self.LIMIT:
                self._made.popitem(last=False)[1].close()
        if kept is not made:  # another run made it meanwhile
            made.close()
        return kept


#: The pack's gateways (process lifetime, like the registered service below).
GATEWAYS = Gateways()


@default_registry.service(SERVICE)
def stripe_service(ctx: RunContext) -> StripeGateway:
    """The shared gateway; its timeout is the number in the running SOP's timeout line."""
    return GATEWAYS.get(sop_timeout(getattr(ctx, "sop", None)))
