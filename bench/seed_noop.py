"""The seed SOP with every line bound to a no-op handler: the workload of the runner,
API and DBOS benches (one definition, so their figures measure the same thing)."""

from __future__ import annotations

from typing import Any

import engine

SOP = "payment-processing"
PARAMS = {"operation": "charge", "customer_id": "cus_ABC123", "amount": 2500, "currency": "usd"}


def noop(ctx: Any, **captures: Any) -> None:
    """Touches the run's state, so each action has a state delta to journal."""
    ctx.state["n"] = ctx.state.get("n", 0) + 1


def registry_for_every_line() -> engine.Registry:
    """Every line of the seed SOP bound to ``noop`` (checks pass, actions do nothing)."""
    sop = engine.load(SOP)
    registry = engine.Registry()
    for line in sop.all_actions():
        pattern = line.text.replace("{", "{{").replace("}", "}}")
        bind = registry.check if line.kind is engine.ActionKind.CHECK else registry.action
        bind(pattern, sop=sop.name, step=line.step)(noop)
    return registry
