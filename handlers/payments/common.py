"""What the payment handler modules share: services, the operation at hand, records.

The three payment SOPs (payment-processing, refund-handling,
subscription-management) share many lines word for word ("verify customer_id
exists in Stripe", "MUST use idempotency keys ..."); their handlers live in
``handlers.payments`` and ask this module which operation the running SOP performs.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import SopFailure
from handlers.payments.notify import Notifier
from handlers.payments.stripe_api import StripeGateway

if TYPE_CHECKING:
    from engine import RunContext

#: SOPs that perform one fixed operation (payment-processing takes it as a parameter).
OPERATION_OF_SOP = {"refund-handling": "refund", "subscription-management": "subscription"}
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on"})
#: Stripe's documented upper bound for one amount in minor units (8 digits).
STRIPE_MAX_AMOUNT = 99999999


def gateway(ctx: RunContext) -> StripeGateway:
    gw: StripeGateway = ctx.services["stripe"]
    return gw


def notifier(ctx: RunContext) -> Notifier:
    note: Notifier = ctx.services["notifier"]
    return note


def operation(ctx: RunContext) -> str:
    """charge | refund | subscription, for whichever payment SOP is running."""
    fixed = OPERATION_OF_SOP.get(ctx.sop.name)
    if fixed is not None:
        return fixed
    return str(ctx.params.get("operation") or "charge")


def subscription_action(ctx: RunContext) -> str:
    """create | cancel: ``action`` in subscription-management, else ``subscription_action``."""
    if ctx.sop.name == "subscription-management":
        return str(ctx.params.get("action") or "create")
    return str(ctx.params.get("subscription_action") or "create")


def amount_bounds(ctx: RunContext) -> tuple[int, int]:
    """(minimum, maximum) of ``amount`` from the SOP's own Parameters (schema keywords).

    Read from the shared, read-only properties (``declared``), not a deep copy of the
    whole schema (``schema_for``: ~0.16 ms, twice a charge).
    """
    from engine.language.params import declared

    prop = declared(ctx.sop).get("amount", {})
    low = 1
    if "minimum" in prop:
        low = max(low, int(prop["minimum"]))
    if "exclusiveMinimum" in prop:
        low = max(low, int(prop["exclusiveMinimum"]) + 1)
    high = STRIPE_MAX_AMOUNT
    if "maximum" in prop:
        high = min(high, int(prop["maximum"]))
    if "exclusiveMaximum" in prop:
        high = min(high, int(prop["exclusiveMaximum"]) - 1)
    return low, high


#: Stripe: "Idempotency keys are up to 255 characters long" (the parameter's maxLength too).
STRIPE_KEY_MAX = 255


def stripe_key(ctx: RunContext, kind: str) -> str:
    """The idempotency key for one Stripe write of this run.

    Derived from the run's ``idempotency_key`` parameter when it has one (the SOP says
    it "prevents duplicate charges on retry": a caller re-sending the same key gets
    the same Stripe object), else from ``ctx.idempotency_key`` (stable per run and
    action). Either way every attempt and every resume sends the same key.
    """
    base = ctx.params.get("idempotency_key")
    if isinstance(base, str) and base:
        derived = f"{base}:{kind}"
        if len(derived) > STRIPE_KEY_MAX:  # a long base: its digest keeps the key stable
            digest = base64.b32encode(hashlib.sha256(base.encode()).digest())
            # base32 (a-z, 2-7): never a long digit run that redaction could take for a card
            derived = f"{digest.decode().rstrip('=').lower()}:{kind}"
        return derived
    key: str = ctx.idempotency_key(kind)
    return key


def request(ctx: RunContext) -> dict[str, Any]:
    """The Stripe request being prepared (step "Prepare"), shared by the actions that build it."""
    req: dict[str, Any] = ctx.state.setdefault("request", {})
    return req


def transaction(ctx: RunContext, **changes: Any) -> dict[str, Any]:
    """The run's transaction summary (id, type, amount, currency, customer, status, run id)."""
    txn: dict[str, Any] = ctx.state.setdefault(
        "transaction",
        {
            "id": None,
            "type": operation(ctx),
            "amount": ctx.params.get("amount"),
            "currency": ctx.params.get("currency") or "usd",
            "customer": ctx.params.get("customer_id"),
            "status": "pending",
            "run_id": ctx.run_id,
            "sop": ctx.sop.name,
            "sop_version": ctx.sop.version,
        },
    )
    txn.update(changes)
    return txn


def produced(ctx: RunContext, kind: str, stripe_id: Any, status: Any, **details: Any) -> None:
    """The Stripe object an operation produced: into the transaction summary, and as the
    run's ``result`` output (id, status, object)."""
    transaction(ctx, id=stripe_id, status=status, **details)
    ctx.state["result"] = {"id": stripe_id, "status": status, "object": kind}


def flagged(metadata: Mapping[str, Any] | None) -> str | None:
    """Why a customer is blocked or flagged (their Stripe metadata says so), else None."""
    for key in ("blocked", "flagged", "fraud"):
        value = (metadata or {}).get(key)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
            return f"customer metadata {key}={value}"
    return None


def configured(name: str) -> str | None:
    """An optional integration's setting from the environment (None: not configured)."""
    value = os.environ.get(name, "").strip()
    return value or None


def require_state(ctx: RunContext, key: str, what: str) -> Any:
    """A value an earlier action left in ``ctx.state``; a clear failure when it did not run."""
    if key not in ctx.state:
        raise SopFailure(
            f"{what} missing", f"{what} is missing: the action that provides it did not run"
        )
    return ctx.state[key]
