"""Refunds: what is still refundable, the refund call, and refund-handling's own lines.

Both payment-processing (operation=refund) and refund-handling refund through
these functions. payment-processing does not delegate to refund-handling as a
child run: its confirmation gate ("require confirmation for refunds > $100")
pauses the parent before step 1, and a child run would carry its own gate, so a
confirmed parent would either pause a second time inside the child (a nested
token the person never sees) or have to pass "already confirmed" down as a
parameter, which anyone calling refund-handling directly could also pass. Sharing
the code keeps one confirmation per refund and one place that computes the
refundable amount.

localstripe does not check a refund against what is left (it refunds any amount)
and its PaymentIntents have no ``amount_received``: the refundable amount is
computed here from ``amount_received`` (or, when absent, the amount of a
succeeded intent) minus the refunds already made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import SopFailure
from handlers.payments.common import gateway, produced, request, transaction
from handlers.payments.scope import action, check
from handlers.payments.stripe_api import StripeGateway

if TYPE_CHECKING:
    from engine import RunContext

SOP = "refund-handling"
PAYMENT_NOT_FOUND = "Payment not found"
EXCEEDS_REFUNDABLE = "Refund exceeds refundable amount"
REFUND_OK = ("succeeded", "pending")
COUNTED_REFUNDS = ("succeeded", "pending", "requires_action")


def refundable_amount(gw: StripeGateway, intent: dict[str, Any]) -> int:
    """Minor units still refundable on ``intent``: received minus refunds already made."""
    received = intent.get("amount_received")
    if received is None:  # localstripe: no amount_received on PaymentIntents
        received = intent.get("amount", 0) if intent.get("status") == "succeeded" else 0
    if not received:
        return 0
    refunded = sum(
        int(r.get("amount") or 0)
        for r in gw.refunds_for(str(intent["id"]))
        if r.get("status") in COUNTED_REFUNDS
    )
    return max(0, int(received) - refunded)


def load_payment(ctx: RunContext) -> dict[str, Any]:
    """The PaymentIntent to refund, checked to belong to the run's customer (cached in state)."""
    cached = ctx.state.get("payment")
    if isinstance(cached, dict):
        return cached
    pi_id = str(ctx.params.get("payment_intent") or "")
    if not pi_id:
        raise SopFailure(PAYMENT_NOT_FOUND, "payment_intent is required for a refund")
    gw = gateway(ctx)
    intent = gw.get_payment_intent(pi_id)
    customer = ctx.params.get("customer_id")
    if intent is None:
        raise SopFailure(PAYMENT_NOT_FOUND, f"Payment not found: {pi_id}")
    if intent.get("customer") != customer:
        raise SopFailure(
            PAYMENT_NOT_FOUND, f"Payment not found: {pi_id} does not belong to customer {customer}"
        )
    payment = {
        "id": intent["id"],
        "status": intent.get("status"),
        "currency": intent.get("currency"),
        "customer": intent.get("customer"),
        "refundable": refundable_amount(gw, intent),
    }
    ctx.state["payment"] = payment
    return payment


def refund_amount(ctx: RunContext) -> int:
    """The amount this refund moves: the one asked for, or everything still refundable."""
    payment = load_payment(ctx)
    refundable = int(payment["refundable"])
    asked = ctx.params.get("amount")
    amount = refundable if asked is None else int(asked)
    if refundable <= 0:
        raise SopFailure(
            EXCEEDS_REFUNDABLE,
            f"nothing is left to refund on {payment['id']} (status {payment['status']})",
        )
    if amount > refundable:
        raise SopFailure(
            EXCEEDS_REFUNDABLE,
            f"refund amount {amount} exceeds the refundable amount {refundable} of {payment['id']}",
            details={"amount": amount, "refundable": refundable, "payment_intent": payment["id"]},
        )
    ctx.state["refund_amount"] = amount
    transaction(ctx, amount=amount, currency=payment.get("currency") or "usd")
    return amount


def build_request(ctx: RunContext) -> dict[str, Any]:
    """Refund request fields (payment_intent, amount); the key and metadata are added by step 2."""
    amount = ctx.state.get("refund_amount")
    if amount is None:
        amount = refund_amount(ctx)
    req = request(ctx)
    req.update({"payment_intent": ctx.params["payment_intent"], "amount": amount})
    return req


def create_refund(ctx: RunContext, key: str) -> dict[str, Any]:
    """POST the refund; every attempt sends the same idempotency key (reconciling: the
    refund this run already made, found by its metadata, when there is one)."""
    req = request(ctx)
    body = {k: v for k, v in req.items() if k in ("payment_intent", "amount", "metadata", "reason")}
    gw = gateway(ctx)
    refund = gw.find_refund(ctx.run_id, str(body["payment_intent"])) if ctx.reconciling else None
    if refund is not None:
        ctx.log.info("reconciled: %s was already made by this run", refund.get("id"))
    else:
        refund = gw.create_refund(body, key)
    produced(
        ctx,
        "refund",
        refund.get("id"),
        refund.get("status"),
        amount=refund.get("amount"),
        currency=refund.get("currency") or transaction(ctx)["currency"],
        payment_intent=req.get("payment_intent"),
    )
    return refund


# ---------------------------------------------------------------- refund-handling's own lines


@action("verify payment_intent belongs to customer_id", sop=SOP)
def verify_payment_owner(ctx: RunContext) -> None:
    load_payment(ctx)


@action("check refund amount does not exceed the refundable amount", sop=SOP)
def check_refund_amount(ctx: RunContext) -> None:
    refund_amount(ctx)


@check("Refund amount is positive and within the refundable amount", sop=SOP)
def refund_amount_ok(ctx: RunContext) -> bool:
    amount = ctx.state.get("refund_amount")
    payment = ctx.state.get("payment") or {}
    return isinstance(amount, int) and 0 < amount <= int(payment.get("refundable", 0))


@action("include refund reason for record keeping", sop=SOP)
def include_reason(ctx: RunContext) -> None:
    reason = ctx.params.get("reason")
    if reason:
        request(ctx)["reason"] = reason
