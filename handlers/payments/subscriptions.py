"""Subscriptions: subscription-management's own lines, and the create / cancel calls.

payment-processing runs ``operation=subscription`` as a child run of
subscription-management (``ctx.run_child``), so the child's every line is bound,
journaled under the parent run and reported like any other run.

localstripe models legacy Plans but not Prices, and subscribes with
``items=[{"plan": ...}]`` only; that form is also accepted by Stripe (a plan id is
a price id there), so the same request works against both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import SopFailure
from handlers.payments.common import gateway, produced, request, subscription_action, transaction
from handlers.payments.scope import action, check

if TYPE_CHECKING:
    from engine import RunContext

SOP = "subscription-management"
PLAN_NOT_FOUND = "Plan not found"
SUBSCRIPTION_NOT_FOUND = "Subscription not found"
EXPECTED_STATUS = {"create": ("active", "trialing"), "cancel": ("canceled",)}


def child_params(ctx: RunContext, key: str) -> dict[str, Any]:
    """subscription-management parameters for the parent's subscription operation."""
    act = subscription_action(ctx)
    params: dict[str, Any] = {
        "action": act,
        "customer_id": ctx.params["customer_id"],
        "idempotency_key": key,
    }
    if act == "create":
        params["plan"] = ctx.params.get("plan")
    else:
        params["subscription_id"] = ctx.params.get("subscription_id")
    return {k: v for k, v in params.items() if v is not None}


def execute(ctx: RunContext, key: str) -> dict[str, Any]:
    """Create or cancel, as the run asks; returns the Stripe subscription.

    Reconciling, what the run already did is looked up first: the subscription it
    created (by its metadata), or the subscription already canceled.
    """
    gw = gateway(ctx)
    act = subscription_action(ctx)
    req = request(ctx)
    customer = str(ctx.params["customer_id"])
    done: dict[str, Any] | None = None
    if ctx.reconciling:
        if act == "create":
            done = gw.find_subscription(ctx.run_id, customer)
        else:
            current = gw.get_subscription(str(ctx.params["subscription_id"]))
            done = current if current and current.get("status") == "canceled" else None
    if done is not None:
        ctx.log.info("reconciled: %s was already %s", done.get("id"), done.get("status"))
        sub = done
    elif act == "create":
        body = {
            "customer": customer,
            "items": [
                {"plan": ctx.params["plan"], "quantity": int(ctx.params.get("quantity") or 1)}
            ],
            "metadata": req.get("metadata") or {},
        }
        sub = gw.create_subscription(body, key)
    else:
        sub = gw.cancel_subscription(str(ctx.params["subscription_id"]), key)
    plan = sub.get("plan") if isinstance(sub.get("plan"), dict) else {}
    assert isinstance(plan, dict)
    produced(
        ctx,
        "subscription",
        sub.get("id"),
        sub.get("status"),
        type=f"subscription_{act}",
        amount=plan.get("amount"),
        currency=plan.get("currency") or transaction(ctx)["currency"],
    )
    return sub


def status_ok(act: str, status: str | None) -> bool:
    return status in EXPECTED_STATUS.get(act, ())


# ------------------------------------------------------- subscription-management's own lines


@action("verify plan exists in Stripe", sop=SOP)
def verify_plan(ctx: RunContext) -> None:
    plan_id = str(ctx.params.get("plan") or "")
    plan = gateway(ctx).get_plan(plan_id) if plan_id else None
    if plan is None:
        raise SopFailure(PLAN_NOT_FOUND, f"Plan not found: {plan_id or '(none given)'}")
    if plan.get("active") is False:
        raise SopFailure(PLAN_NOT_FOUND, f"Plan not found: {plan_id} is not active")
    ctx.state["plan"] = {
        "id": plan.get("id"),
        "amount": plan.get("amount"),
        "currency": plan.get("currency"),
    }


@action("verify subscription_id belongs to customer_id", sop=SOP)
def verify_subscription_owner(ctx: RunContext) -> None:
    sub_id = str(ctx.params.get("subscription_id") or "")
    sub = gateway(ctx).get_subscription(sub_id) if sub_id else None
    customer = ctx.params.get("customer_id")
    if sub is None or sub.get("customer") != customer:
        raise SopFailure(
            SUBSCRIPTION_NOT_FOUND,
            f"Subscription not found: {sub_id or '(none given)'} for customer {customer}",
        )
    ctx.state["subscription"] = {"id": sub.get("id"), "status": sub.get("status")}


@action("verify subscription status matches the requested action", sop=SOP)
def verify_subscription_status(ctx: RunContext) -> None:
    result = ctx.state.get("result") or {}
    act = subscription_action(ctx)
    if not status_ok(act, result.get("status")):
        raise SopFailure(
            "subscription fails",
            f"subscription {result.get('id')} is {result.get('status')} after {act} "
            f"(expected {' or '.join(EXPECTED_STATUS.get(act, ()))})",
        )


@check("Subscription status is {first}, {second} or {third}", sop=SOP)
def subscription_status_is(ctx: RunContext, first: str, second: str, third: str) -> bool:
    status = (ctx.state.get("result") or {}).get("status")
    return status in (first, second, third)
