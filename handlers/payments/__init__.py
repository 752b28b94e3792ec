"""The Stripe payments pack: handlers for payment-processing and its Related SOPs.

This module is the pack's descriptor (entry point ``sop_engine.handlers: payments``):
it names the SOPs the pack serves and the modules that register its handlers, and
imports nothing, so ``sop`` can decide whether a run needs the pack without paying
for stripe, jinja2 or the handlers themselves (see ``engine.binding.packs``).
"""

sops = ("payment-processing", "refund-handling", "subscription-management")
modules = (
    "handlers.payments.refunds",
    "handlers.payments.subscriptions",
    "handlers.payments.charges",
    "handlers.payments.recovery_notices",
)
