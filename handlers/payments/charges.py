"""Handlers for every line of the payment SOPs (payment-processing and its Related SOPs).

Importing this module registers the whole pack: these handlers, the refund and
subscription lines (``handlers.payments.refunds``, ``.subscriptions``), the Stripe
gateway and notifier services, and the example fixtures (``cus_``, ``pi_``,
``plan_``). Lines shared word for word by the three SOPs have one handler here
that asks ``handlers.payments.common.operation`` what the running SOP does.

Numbers come from the SOP text: the refund threshold from "require confirmation
for refunds > $100" (dollars in the text, compared in minor units: $100 = 10000
cents, the same factor for every two-decimal currency), the timeout from "set
appropriate timeout (30 seconds)", the amount limits from the Parameters section.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.binding.registry import fixture, service
from engine.errors import ConfirmationRequired, NotApplicable, OutcomeUnknown, SopError, SopFailure
from engine.execution.redact import redact, redact_text
from handlers.payments import refunds, subscriptions
from handlers.payments.common import (
    amount_bounds,
    configured,
    flagged,
    gateway,
    notifier,
    operation,
    produced,
    request,
    stripe_key,
    subscription_action,
    transaction,
)
from handlers.payments.notify import format_amount
from handlers.payments.scope import action, check
from handlers.payments.stripe_api import (
    CARD_DECLINED,
    CUSTOMER_NOT_FOUND,
    FRAUD_DETECTED,
    INSUFFICIENT_FUNDS,
    PAYMENT_FAILED,
    RATE_LIMITED,
    StripeGateway,
)

if TYPE_CHECKING:
    from engine import RunContext

PAYMENT_SOP = "payment-processing"
NO_PAYMENT_METHOD = "No payment method"
MINOR_PER_MAJOR = 100  # "$100" in the text -> 10000 minor units (cents)
PI_OK = ("succeeded", "processing")
KIND_OF = {"charge": "payment_intent", "refund": "refund", "subscription": "subscription"}
PAUSE_KEYS = ("requires_confirmation", "message", "pending_refund")
OPS_MAILBOX = "payments-ops@sop-engine.invalid"
_CARD_PROBE = "4242 4242 4242 4242 cvv 123"


# ================================================================= SOP-wide guards


@action("log full card numbers or CVV")
def guard_no_card_data(ctx: RunContext) -> None:
    """MUST NOT: prove redaction is active, and keep card-like input out of every request."""
    probe = redact_text(_CARD_PROBE)
    if "4242 4242 4242 4242" in probe or "cvv 123" in probe:
        raise SopFailure(
            "redaction inactive", "card number redaction is not working; refusing to run"
        )
    description = ctx.params.get("description")
    if isinstance(description, str):
        clean = redact_text(description)
        ctx.state["description"] = clean
        if clean != description:
            ctx.log.warning("description contained card data; it was redacted before use")


@action("use idempotency keys to prevent duplicate {what}")
def guard_idempotency(ctx: RunContext, what: str) -> None:
    """Every Stripe write of this run carries a key derived from one stable base."""
    key = stripe_key(ctx, "guard")
    if not key:
        raise SopFailure(
            "idempotency key missing", f"no idempotency key available to prevent duplicate {what}"
        )
    ctx.state["idempotent"] = True


@action("validate all input parameters")
def guard_validate(ctx: RunContext) -> None:
    """The engine validated the parameters before planning; re-check against the same schema."""
    from engine.language.params import problems

    found = problems(ctx.sop, dict(ctx.params))
    if found:
        raise SopFailure("invalid parameters", "invalid parameters: " + "; ".join(found))


@action("require confirmation for refunds > ${threshold:d}")
def guard_confirm_large_refund(ctx: RunContext, threshold: int) -> None:
    """Pause a refund above the threshold until a person confirms this exact refund.

    Runs before step 1, so with an explicit amount the pause happens before any
    Stripe call; a full refund (no amount) first reads what is refundable.
    """
    if operation(ctx) != "refund":
        raise NotApplicable(f"operation is {operation(ctx)}; the gate applies to refunds")
    amount = ctx.params.get("amount")
    if amount is None:
        amount = int(refunds.load_payment(ctx)["refundable"])
    limit = threshold * MINOR_PER_MAJOR
    if int(amount) <= limit:
        raise NotApplicable(f"refund of {amount} is not above {limit} (${threshold})")
    pi = ctx.params.get("payment_intent")
    pending = {"amount": int(amount), "payment_intent": pi}
    op = {"type": "refund", "customer": ctx.params.get("customer_id"), **pending}
    if ctx.confirms(op):
        for key in PAUSE_KEYS:
            ctx.output.pop(key, None)
        ctx.log.info("refund of %s on %s confirmed by a person", amount, pi)
        return
    message = f"Refund amount exceeds ${threshold}. Please confirm."
    raise ConfirmationRequired(
        message,
        op,
        {"requires_confirmation": True, "message": message, "pending_refund": pending},
    )


@action("log all operations for audit purposes")
def guard_audit(ctx: RunContext) -> None:
    entry = {
        "event": "operation.started",
        "operation": operation(ctx),
        "customer": ctx.params.get("customer_id"),
        "amount": ctx.params.get("amount"),
        "currency": ctx.params.get("currency"),
    }
    ctx.log.info("%s %s for %s", ctx.sop.name, entry["operation"], entry["customer"])
    ctx.record("audit", {k: v for k, v in entry.items() if v is not None})


# ================================================================= step 1: validate input


@action("verify customer_id exists in Stripe")
def verify_customer(ctx: RunContext) -> None:
    customer_id = str(ctx.params["customer_id"])
    customer = gateway(ctx).get_customer(customer_id)
    if customer is None:
        raise SopFailure(CUSTOMER_NOT_FOUND, f"Customer not found: {customer_id}")
    settings = customer.get("invoice_settings") or {}
    ctx.state["customer"] = {
        "id": customer.get("id"),
        "object": customer.get("object"),
        "email": customer.get("email"),
        "name": customer.get("name"),
        "metadata": dict(customer.get("metadata") or {}),
        "default_payment_method": settings.get("default_payment_method"),
        "default_source": customer.get("default_source"),
    }


@check("Customer lookup returns valid customer object")
def customer_valid(ctx: RunContext) -> bool:
    customer = ctx.state.get("customer") or {}
    return customer.get("object") == "customer" and customer.get("id") == ctx.params.get(
        "customer_id"
    )


@action("check payment method is attached to customer")
def check_payment_method(ctx: RunContext) -> None:
    op = operation(ctx)
    if op == "refund":
        raise NotApplicable("a refund goes back to the original payment's method")
    if op == "subscription" and subscription_action(ctx) == "cancel":
        raise NotApplicable("cancelling a subscription charges nothing")
    customer = ctx.state.get("customer") or {}
    gw = gateway(ctx)
    chosen: dict[str, Any] | None = None
    default = customer.get("default_payment_method")
    if isinstance(default, str) and default:
        found = gw.get_payment_method(default)
        if found is not None and found.get("customer") == customer.get("id"):
            chosen = found
    if chosen is None:
        cards = gw.card_payment_methods(str(ctx.params["customer_id"]))
        chosen = cards[0] if cards else None
    if chosen is None:
        raise SopFailure(
            NO_PAYMENT_METHOD, f"No payment method available for {ctx.params['customer_id']}"
        )
    card = chosen.get("card") or {}
    ctx.state["payment_method"] = {
        "id": chosen["id"],
        "last4": card.get("last4"),
        "brand": card.get("brand"),
    }


@action("validate amount is within acceptable limits", sop=PAYMENT_SOP)
def validate_amount(ctx: RunContext) -> None:
    op = operation(ctx)
    if op == "subscription":
        raise NotApplicable("a subscription is priced by its plan, not by amount")
    low, high = amount_bounds(ctx)
    if op == "refund":
        amount = refunds.refund_amount(ctx)  # also checks ownership and what is refundable
    else:
        raw = ctx.params.get("amount")
        if raw is None:
            raise SopFailure("invalid amount", "amount is required for charge operations")
        amount = int(raw)
    if not low <= amount <= high:
        raise SopFailure("invalid amount", f"amount {amount} is outside the limits {low}..{high}")
    ctx.state["amount"] = amount


@check("Amount is positive and within account limits", sop=PAYMENT_SOP)
def amount_valid(ctx: RunContext) -> bool:
    if operation(ctx) == "subscription":
        raise NotApplicable("a subscription is priced by its plan, not by amount")
    low, high = amount_bounds(ctx)
    amount = ctx.state.get("amount")
    return isinstance(amount, int) and low <= amount <= high


@action("verify customer is not blocked or flagged")
def verify_not_flagged(ctx: RunContext) -> None:
    """A flagged customer (Stripe metadata blocked/flagged/fraud = true) is blocked in step 3."""
    reason = flagged((ctx.state.get("customer") or {}).get("metadata"))
    if reason:
        ctx.state["blocked"] = reason
        raise SopFailure(
            FRAUD_DETECTED, f"customer {ctx.params['customer_id']} is flagged ({reason})"
        )


@action("check fraud detection score if available")
def check_fraud_score(ctx: RunContext) -> None:
    """Radar's risk level of the customer's latest charge; localstripe has no Radar."""
    if operation(ctx) != "charge":
        raise NotApplicable(f"fraud screening applies to charges (operation is {operation(ctx)})")
    outcome = gateway(ctx).latest_charge_outcome(str(ctx.params["customer_id"]))
    if not outcome or outcome.get("risk_level") in (None, "not_assessed", "unknown"):
        raise NotApplicable("no Radar risk score is available for this customer")
    ctx.state["risk"] = {"level": outcome.get("risk_level"), "score": outcome.get("risk_score")}
    if outcome.get("risk_level") == "highest" or outcome.get("type") == "blocked":
        ctx.state["blocked"] = f"Radar risk level {outcome.get('risk_level')}"
        raise SopFailure(
            FRAUD_DETECTED, f"Radar rates customer {ctx.params['customer_id']} highest risk"
        )


# ================================================================= step 2: prepare the request


def _build_request(ctx: RunContext) -> dict[str, Any]:
    op = operation(ctx)
    req = request(ctx)
    if op == "charge":
        pm = ctx.state.get("payment_method") or {}
        req.update(
            {
                "amount": ctx.state.get("amount", ctx.params.get("amount")),
                "currency": ctx.params.get("currency") or "usd",
                "customer": ctx.params["customer_id"],
                "payment_method": pm.get("id"),
                "payment_method_types": ["card"],
                "confirm": True,
                "off_session": True,
            }
        )
    elif op == "refund":
        refunds.build_request(ctx)
    else:
        req.update({"customer": ctx.params["customer_id"], "action": subscription_action(ctx)})
    return req


@action("include idempotency_key for all operations")
def include_idempotency_key(ctx: RunContext) -> None:
    req = _build_request(ctx)
    req["idempotency_key"] = stripe_key(ctx, KIND_OF[operation(ctx)])


@action("set appropriate metadata for tracking")
def set_metadata(ctx: RunContext) -> None:
    request(ctx)["metadata"] = {
        "sop_run_id": ctx.run_id,
        "sop_name": ctx.sop.name,
        "sop_version": ctx.sop.version or "",
        "sop_operation": operation(ctx),
    }


@action("include description for record keeping", sop=PAYMENT_SOP)
def include_description(ctx: RunContext) -> None:
    description = ctx.state.get("description", ctx.params.get("description"))
    if not description:
        raise NotApplicable("no description was given")
    if operation(ctx) != "charge":
        raise NotApplicable(f"Stripe keeps descriptions on charges (operation is {operation(ctx)})")
    request(ctx)["description"] = redact_text(str(description))


@action("add statement descriptor if configured", sop=PAYMENT_SOP)
def add_statement_descriptor(ctx: RunContext) -> None:
    suffix = configured("SOP_STATEMENT_DESCRIPTOR")
    if suffix is None:
        raise NotApplicable("no statement descriptor configured (SOP_STATEMENT_DESCRIPTOR)")
    if operation(ctx) != "charge":
        raise NotApplicable(
            f"statement descriptors apply to charges (operation is {operation(ctx)})"
        )
    if len(suffix) > 22 or not any(c.isalpha() for c in suffix):
        raise SopFailure(
            "invalid statement descriptor",
            "SOP_STATEMENT_DESCRIPTOR: 1-22 characters with a letter",
        )
    request(ctx)["statement_descriptor_suffix"] = suffix


_REQUIRED_FIELDS = {
    "charge": ("amount", "currency", "customer", "payment_method", "idempotency_key", "metadata"),
    "refund": ("payment_intent", "amount", "idempotency_key", "metadata"),
    "subscription": ("customer", "action", "idempotency_key", "metadata"),
}


@check("Request object contains all required fields")
def request_complete(ctx: RunContext) -> bool:
    req = request(ctx)
    missing = [f for f in _REQUIRED_FIELDS[operation(ctx)] if req.get(f) in (None, "", {})]
    if missing:
        raise SopFailure("request incomplete", "request is missing: " + ", ".join(missing))
    return True


# ================================================================= step 3: execute


def execute_with_audit(ctx: RunContext) -> None:
    """The one Stripe write of the run; failures are recorded first.

    An unknown outcome is not a failure: no failed transaction is recorded for it (Stripe
    may hold a succeeded one); the run ends ``unknown`` and its resume reconciles it.
    """
    op = operation(ctx)
    req = request(ctx)
    key = str(req.get("idempotency_key") or stripe_key(ctx, KIND_OF[op]))
    try:
        if ctx.state.get("blocked"):
            raise SopFailure(
                FRAUD_DETECTED, f"transaction blocked: {ctx.state['blocked']}", retryable=False
            )
        if op == "charge":
            _charge(ctx, key)
        elif op == "refund":
            refunds.create_refund(ctx, key)
        elif ctx.sop.name == subscriptions.SOP:
            subscriptions.execute(ctx, key)
        else:
            _subscription_child(ctx, key)
    except SopFailure as failure:
        if failure.retryable or isinstance(failure, OutcomeUnknown):
            event = "attempt.unknown" if isinstance(failure, OutcomeUnknown) else "attempt.failed"
            ctx.record(
                "audit", {"event": event, "condition": failure.condition, "attempt": ctx.attempt}
            )
            raise
        status = "blocked" if failure.condition == FRAUD_DETECTED else "failed"
        txn = transaction(ctx, status=status, failure=failure.condition)
        if failure.details.get("charge"):
            txn["charge"] = failure.details["charge"]
        ctx.record("transaction", txn)
        for key in PAUSE_KEYS:
            ctx.output.pop(key, None)
        ctx.output.update(success=False, status=status, error=failure.condition)
        raise  # "Block transaction, escalate to supervisor": the engine does it


def _charge(ctx: RunContext, key: str) -> None:
    req = request(ctx)
    fields = (
        "amount",
        "currency",
        "customer",
        "payment_method",
        "payment_method_types",
        "confirm",
        "off_session",
        "metadata",
        "description",
        "statement_descriptor_suffix",
    )
    body = {k: req[k] for k in fields if k in req}
    gw = gateway(ctx)
    intent = gw.find_payment_intent(ctx.run_id, body["customer"]) if ctx.reconciling else None
    if intent is not None:
        ctx.log.info("reconciled: %s was already created by this run", intent.get("id"))
    else:
        intent = gw.create_payment_intent(body, key)
    produced(
        ctx,
        "payment_intent",
        intent.get("id"),
        intent.get("status"),
        amount=intent.get("amount"),
        currency=intent.get("currency"),
    )


def _subscription_child(ctx: RunContext, key: str) -> None:
    """payment-processing's subscription operation: a child run of subscription-management."""
    result = ctx.run_child(subscriptions.SOP, subscriptions.child_params(ctx, key))
    status = getattr(result.status, "value", result.status)
    output = dict(result.output or {})
    ctx.state["child_run_id"] = result.run_id
    if status == "unknown":  # not retried here: the parent's resume resumes the child
        raise OutcomeUnknown(
            "child run outcome unknown",
            f"{subscriptions.SOP} run {result.run_id}: outcome unknown",
            retryable=False,
        )
    if status != "succeeded":
        errors = "; ".join(result.errors or []) or f"child run {result.run_id} {status}"
        raise SopFailure(
            "payment fails", f"{subscriptions.SOP} run {result.run_id}: {errors}", retryable=False
        )
    produced(
        ctx,
        "subscription",
        output.get("subscription_id"),
        output.get("status"),
        type=f"subscription_{subscription_action(ctx)}",
        child_run_id=result.run_id,
    )


@action("use appropriate Stripe API endpoint for operation type", sop=PAYMENT_SOP)
def use_endpoint(ctx: RunContext) -> None:
    execute_with_audit(ctx)


@action("create the refund through the Stripe Refunds API", sop=refunds.SOP)
def create_refund_action(ctx: RunContext) -> None:
    execute_with_audit(ctx)


@action(
    "create or cancel the subscription through the Stripe Subscriptions API",
    sop=subscriptions.SOP,
)
def create_or_cancel(ctx: RunContext) -> None:
    """subscription-management's write; here, beside the other writes, so that
    subscriptions.py needs nothing from this module (no import cycle)."""
    execute_with_audit(ctx)


@action("handle API rate limits with exponential backoff")
def handle_rate_limits(ctx: RunContext) -> None:
    """The runner retries per the SOP; this holds only if the SOP says so and the SDK does not."""
    row = next((r for r in ctx.sop.recovery if r.error_type.lower() == RATE_LIMITED.lower()), None)
    if row is None or row.retry is not True or not row.backoff:
        raise SopFailure(
            "rate limit policy missing",
            "the Error Recovery table must retry 'Rate limited' with backoff",
        )
    gw: StripeGateway = gateway(ctx)
    requestor = getattr(gw.client, "_requestor", None)
    retries = getattr(getattr(requestor, "_options", None), "max_network_retries", 0)
    if retries not in (0, None):
        raise SopFailure(
            "rate limit policy bypassed", f"the Stripe SDK retries on its own ({retries})"
        )


@action("log transaction details for audit trail")
def log_transaction(ctx: RunContext) -> None:
    txn = transaction(ctx)
    ctx.log.info(
        "transaction %s %s %s %s for %s: %s",
        txn.get("type"),
        txn.get("id"),
        txn.get("amount"),
        txn.get("currency"),
        txn.get("customer"),
        txn.get("status"),
    )
    ctx.record("audit", {"event": f"{txn.get('type')}.executed", **txn})


@action("set appropriate timeout ({seconds:d} seconds)")
def set_timeout(ctx: RunContext, seconds: int) -> None:
    """The gateway was built with this number (stripe_api.sop_timeout reads this line)."""
    gw = gateway(ctx)
    if abs(gw.timeout - seconds) > 1e-9:
        raise SopFailure(
            "timeout mismatch", f"Stripe client timeout is {gw.timeout:g}s, the SOP says {seconds}s"
        )


@check("API returns success status")
def api_success(ctx: RunContext) -> bool:
    result = ctx.state.get("result") or {}
    ok = {"payment_intent": (*PI_OK, "requires_capture"), "refund": refunds.REFUND_OK}
    if result.get("object") == "subscription":
        return subscriptions.status_ok(subscription_action(ctx), result.get("status"))
    return result.get("status") in ok.get(str(result.get("object")), ())


@check("Transaction ID is received")
def transaction_id_received(ctx: RunContext) -> bool:
    return bool(transaction(ctx).get("id"))


# ================================================================= step 4: handle the response


@action("verify payment status is successful", sop=PAYMENT_SOP)
def verify_payment_status(ctx: RunContext) -> None:
    op = operation(ctx)
    result = ctx.state.get("result") or {}
    status = result.get("status")
    if op == "subscription":
        good = subscriptions.status_ok(subscription_action(ctx), status)
    else:
        good = status in (PI_OK if op == "charge" else refunds.REFUND_OK)
    if not good:
        raise SopFailure(PAYMENT_FAILED, f"{op} {result.get('id')} ended with status {status}")


@action("verify refund status is successful", sop=refunds.SOP)
def verify_refund_status(ctx: RunContext) -> None:
    verify_payment_status(ctx)


@action("store transaction ID for reference")
def store_transaction_id(ctx: RunContext) -> None:
    txn = transaction(ctx)
    op = operation(ctx)
    for key in PAUSE_KEYS:
        ctx.output.pop(key, None)
    if op == "charge":
        ctx.output.update(
            success=True, transaction_id=txn["id"], amount=txn["amount"], status=txn["status"]
        )
    elif op == "refund":
        ctx.output.update(
            success=True,
            transaction_id=txn["id"],
            payment_intent=txn.get("payment_intent") or ctx.params.get("payment_intent"),
            amount=txn["amount"],
            status=txn["status"],
        )
    elif ctx.sop.name == subscriptions.SOP:
        ctx.output.update(success=True, subscription_id=txn["id"], status=txn["status"])
    else:
        ctx.output.update(
            success=True, transaction_id=txn["id"], subscription_id=txn["id"], status=txn["status"]
        )


def _message_context(ctx: RunContext) -> dict[str, Any]:
    txn = transaction(ctx)
    customer = ctx.state.get("customer") or {}
    return {
        "sop": ctx.sop.name,
        "version": ctx.sop.version or "",
        "run_id": ctx.run_id,
        "operation": txn.get("type") or operation(ctx),
        "customer": txn.get("customer"),
        "customer_name": customer.get("name") or "",
        "transaction_id": txn.get("id"),
        "amount": txn.get("amount"),
        "currency": txn.get("currency"),
        "amount_display": format_amount(txn.get("amount"), txn.get("currency")),
        "status": txn.get("status"),
        "description": ctx.state.get("description") or "",
        "card_last4": (ctx.state.get("payment_method") or {}).get("last4") or "",
    }


@action("send confirmation notification")
def send_confirmation(ctx: RunContext) -> None:
    to = configured("SOP_NOTIFY_EMAIL") or OPS_MAILBOX
    path = notifier(ctx).send(
        "confirmation",
        to,
        _message_context(ctx),
        run_id=ctx.run_id,
        key=ctx.idempotency_key("confirmation"),
    )
    ctx.state.setdefault("messages", []).append(str(path))


@action("trigger webhook handlers", sop=PAYMENT_SOP)
def trigger_webhooks(ctx: RunContext) -> None:
    url = configured("SOP_WEBHOOK_URL")
    if url is None:
        raise NotApplicable("no webhook handler configured (SOP_WEBHOOK_URL)")
    # One event id per run and action, sent again unchanged if a resume repeats the POST
    # (a crash after it, before the journal knew): receivers drop a delivery they have seen.
    key = ctx.idempotency_key("webhook")
    body = json.dumps(
        redact(
            {
                "id": key,
                "event": f"sop.{operation(ctx)}.completed",
                "transaction": transaction(ctx),
            }
        )
    )
    req = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(req, timeout=gateway(ctx).timeout) as response:
        if response.status >= 300:
            raise SopFailure("webhook failed", f"webhook answered HTTP {response.status}")


@check("Payment status is {first} or {second}", sop=PAYMENT_SOP)
def payment_status_is(ctx: RunContext, first: str, second: str) -> bool:
    op = operation(ctx)
    if op != "charge":
        raise NotApplicable(
            f"payment status applies to charges (operation is {op}; checked in step 4's action)"
        )
    return (ctx.state.get("result") or {}).get("status") in (first, second)


@check("Refund status is {first} or {second}", sop=refunds.SOP)
def refund_status_is(ctx: RunContext, first: str, second: str) -> bool:
    return (ctx.state.get("result") or {}).get("status") in (first, second)


@action("retry payment failures (only network/timeout errors)")
def never_retry_payment_failures(ctx: RunContext) -> None:
    """MUST NOT: prove from the SOP's own rules that no payment failure is ever retried.

    The answer depends on the SOP's text alone, so it is worked out once per SOP and step
    and kept with the (immutable) Sop.
    """
    from engine.execution.retry import policy_for

    sop, number = ctx.sop, ctx.action.step

    def retried_conditions() -> tuple[str, ...]:
        step = next((s for s in sop.steps if s.number == number), None)
        return tuple(
            condition
            for condition in (CARD_DECLINED, INSUFFICIENT_FUNDS, FRAUD_DETECTED, PAYMENT_FAILED)
            if policy_for(SopFailure(condition, retryable=False), sop, step).retry
        )

    retried = sop.derived(("payments", "retried-payment-failures", number), retried_conditions)
    if retried:
        raise SopFailure(
            "retry policy", "the SOP would retry payment failures: " + ", ".join(retried)
        )


# ================================================================= step 5: post-processing


@action("update internal records with transaction details")
def update_records(ctx: RunContext) -> None:
    ctx.record("transaction", transaction(ctx))


@action("send receipt to customer if configured")
def send_receipt(ctx: RunContext) -> None:
    email = (ctx.state.get("customer") or {}).get("email")
    if not email:
        raise NotApplicable(
            f"customer {ctx.params.get('customer_id')} has no email address for a receipt"
        )
    path = notifier(ctx).send(
        "receipt",
        str(email),
        _message_context(ctx),
        run_id=ctx.run_id,
        key=ctx.idempotency_key("receipt"),
    )
    ctx.state.setdefault("messages", []).append(str(path))


@action("update subscription status for subscription operations", sop=PAYMENT_SOP)
def update_subscription_status(ctx: RunContext) -> None:
    if operation(ctx) != "subscription":
        raise NotApplicable(f"operation is {operation(ctx)}")
    result = ctx.state.get("result") or {}
    ctx.record(
        "subscription",
        {
            "id": result.get("id"),
            "status": result.get("status"),
            "customer": ctx.params.get("customer_id"),
        },
    )


@action("trigger analytics tracking", sop=PAYMENT_SOP)
def track_analytics(ctx: RunContext) -> None:
    target = configured("SOP_ANALYTICS_FILE")
    if target is None:
        raise NotApplicable("no analytics sink configured (SOP_ANALYTICS_FILE)")
    txn = transaction(ctx)
    key = ctx.idempotency_key("analytics")
    event = {
        "id": key,
        "ts": int(time.time()),
        "event": f"{txn.get('type')}.{txn.get('status')}",
        **txn,
    }
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and f'"id": "{key}"' in path.read_text(encoding="utf-8"):
        return  # a resume repeating this action: the event is already there, once
    with path.open("a", encoding="utf-8") as sink:
        sink.write(json.dumps(redact(event), sort_keys=True) + "\n")


# ================================================================= example fixtures (sandbox)


def _gw(services: Mapping[str, Any]) -> StripeGateway:
    gw: StripeGateway = services["stripe"]
    return gw


@fixture("cus_")
def make_customer(services: Mapping[str, Any], symbol: str, **_: Any) -> str:
    """A customer with an email and a default Visa test card, for an example's cus_ symbol."""
    client = _gw(services).client
    customer = client.v1.customers.create(
        {
            "name": f"Example {symbol}",
            "email": f"{symbol.lower()}@example.invalid",
            "metadata": {"symbol": symbol},
        }
    )
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(customer.id)


@fixture("pi_")
def make_payment(
    services: Mapping[str, Any], symbol: str, bound: Mapping[str, str] | None = None
) -> str:
    """A succeeded $50.00 payment, by the customer the example names (else a new one)."""
    customers = [v for v in (bound or {}).values() if str(v).startswith("cus_")]
    customer = (
        customers[-1] if customers else make_customer(services, "cus_" + symbol.removeprefix("pi_"))
    )
    client = _gw(services).client
    pms = client.v1.payment_methods.list({"customer": customer, "type": "card"}).data
    if not pms:
        raise SopFailure(NO_PAYMENT_METHOD, f"fixture {symbol}: customer {customer} has no card")
    params: dict[str, Any] = {
        "amount": 5000,
        "currency": "usd",
        "customer": customer,
        "payment_method": pms[0].id,
        "payment_method_types": ["card"],
        "confirm": True,
        "off_session": True,
    }
    intent = client.v1.payment_intents.create(params)  # type: ignore[arg-type]
    return str(intent.id)


@fixture("plan_")
def make_plan(services: Mapping[str, Any], symbol: str, **_: Any) -> str:
    """A monthly $15.00 plan for an example's plan_ symbol."""
    plan = _gw(services).client.v1.plans.create(
        {
            "amount": 1500,
            "currency": "usd",
            "interval": "month",
            "product": {"name": f"Example {symbol}"},
        }
    )
    return str(plan.id)


class _SandboxEnvironment:
    """Examples run against the local sandbox unless STRIPE_API_KEY already names a Stripe.

    A live key (``sk_live_``/``rk_live_``) is refused: examples create customers and
    charge them.
    """

    def __init__(self) -> None:
        self._sandbox: Any = None

    def __enter__(self) -> dict[str, str]:
        key = os.environ.get("STRIPE_API_KEY", "")
        if key.startswith(("sk_live_", "rk_live_")):
            raise SopError("refusing to run SOP examples with a live Stripe key (STRIPE_API_KEY)")
        if key:
            return {}
        from handlers.sandbox import Sandbox

        self._sandbox = Sandbox().start()
        env: dict[str, str] = self._sandbox.env()
        return env

    def __exit__(self, *exc: object) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None


@service("sandbox")
def sandbox_environment(ctx: RunContext) -> _SandboxEnvironment:
    """For ``sop test``: see engine.testing.examples.environment."""
    return _SandboxEnvironment()


__all__ = ["execute_with_audit", "refunds", "subscriptions"]
