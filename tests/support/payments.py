"""A customer with a card on the sandbox, made through the payments pack's own services."""

from __future__ import annotations

from pathlib import Path

from engine.binding.packs import load_handlers
from engine.execution.context import Services
from handlers.payments import charges

ROOT = Path(__file__).resolve().parents[2]


def new_customer(symbol: str = "cus_TEST") -> str:
    """A sandbox customer id (STRIPE_API_BASE etc. from the sandbox fixture's environment)."""
    registry = load_handlers(["handlers.payments"], project_dir=ROOT)
    services = Services(None, registry.services())

    class _Ctx:
        sop = None

    services.bind(_Ctx())  # type: ignore[arg-type]
    return charges.make_customer(services, symbol)
