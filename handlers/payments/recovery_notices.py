"""The pack's delivery of the SOP's recovery notices: its outbox (and SMTP), not stderr.

The engine decides when the Error Recovery table says "notify user" or "escalate to
supervisor" (engine.execution.recovery_effects) and journals the notice; this service
turns it into mail, once per notice key (the outbox file is named by it): the
escalation goes to the supervisor (``SOP_SUPERVISOR_EMAIL``), a notice to the
customer's email when the run looked the customer up, else to the operations mailbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.binding.registry import default_registry
from engine.execution.notifier import SERVICE, Notice
from handlers.payments.notify import NOTIFIERS, Notifier

if TYPE_CHECKING:
    from engine import RunContext

OPS_MAILBOX = "payments-ops@sop-engine.invalid"


class OutboxNotices:
    """``deliver(notice)`` through the pack's notifier; the run's state names the customer."""

    def __init__(self, notifier: Notifier, state: dict[str, Any]) -> None:
        self.notifier = notifier
        self.state = state

    def deliver(self, notice: Notice) -> None:
        params = notice.params
        context = {
            "sop": notice.sop,
            "run_id": notice.run_id,
            "condition": notice.condition,
            "procedure": notice.procedure,
            "operation": params.get("operation") or notice.sop,
            "customer": params.get("customer_id") or "-",
            "amount": params.get("amount"),
            "currency": params.get("currency"),
            "reason": notice.message,
        }
        if notice.kind == "escalate":
            self.notifier.escalate(context, run_id=notice.run_id, key=notice.key)
            return
        email = (self.state.get("customer") or {}).get("email") or OPS_MAILBOX
        self.notifier.send("notice", str(email), context, run_id=notice.run_id, key=notice.key)


@default_registry.service(SERVICE)
def recovery_notices(ctx: RunContext) -> OutboxNotices:
    """The recovery notifier of a run of this pack's SOPs (mail, once per notice key)."""
    return OutboxNotices(NOTIFIERS.get(), ctx.state)
