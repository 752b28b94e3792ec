"""Faults: charge runs through the sandbox's fault layer, about 20% of requests failing.

Each run draws (seeded) which of its four Stripe requests fail, how (429, 500, 503,
reset, timeout, response dropped after Stripe acted) and how many times in a row; a few
runs also get a card decline. Promise: a run succeeds with exactly one PaymentIntent,
fails with a clear reason and no PaymentIntent, or ends ``unknown`` and is reconciled by
``resume``; no event is lost and no decline is ever retried.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine.binding.registry import Registry
from engine.errors import SopError
from engine.execution.runner import RunResult, resume, run
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.standing_proof import (
    SEED,
    figure,
    lost_events,
    new_customer,
    objects_by_run,
    scaled,
)

SOP = "payment-processing"
#: The requests of a charge run, in order (method, path prefix the fault matches).
ROUTES = (
    ("GET", "/v1/customers/"),
    ("GET", "/v1/payment_methods"),
    ("GET", "/v1/charges"),
    ("POST", "/v1/payment_intents"),
)
KINDS = ("429", "500", "503", "reset", "timeout", "drop_after")
#: How many times in a row a chosen request fails; 5 outlasts the SOP's 3 retries.
BURSTS = (1, 1, 1, 1, 1, 1, 2, 2, 3, 5)
ROUTE_FAULT_RATE = 0.14  # x mean burst 1.8 x 4 routes: about 20% of all requests fail
DECLINE_RATE = 0.04
#: What a clear failure names besides the SOP's own words: the cause.
CAUSE = re.compile(
    r"\b(HTTP \d{3}|\d{3}|rate.?limit|declined|timed? ?out|connection|network)", re.I
)


def _arm(sandbox: Sandbox, rng: random.Random) -> list[str]:
    armed: list[str] = []
    for method, path in ROUTES:
        if rng.random() < ROUTE_FAULT_RATE:
            for _ in range(rng.choice(BURSTS)):
                kind = rng.choice(KINDS)
                seconds = 0.2 if kind == "timeout" else None
                sandbox.inject(kind, match=path, method=method, seconds=seconds)
                armed.append(kind)
    if rng.random() < DECLINE_RATE:
        sandbox.inject("decline", match="/v1/payment_intents", method="POST")
        armed.append("decline")
    return armed


def _is_unknown(result: RunResult) -> bool:
    return result.status.value == "unknown" or any(
        a.status.value == "unknown" for a in result.actions
    )


def test_charge_runs_under_faults_charge_once_and_lose_nothing(
    sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    runs = scaled(60, 500)
    rng = random.Random(SEED)
    customers = [new_customer(sandbox, f"fault{i}@example.invalid") for i in range(5)]
    outcome: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    unclear: list[str] = []
    lost: list[str] = []
    declined_runs: set[str] = set()
    reconciled: Counter[str] = Counter()
    started = time.perf_counter()
    for i in range(runs):
        armed = _arm(sandbox, rng)
        params: dict[str, Any] = {
            "operation": "charge",
            "customer_id": customers[i % len(customers)],
            "amount": rng.randint(50, 99_999),
        }
        result = run(SOP, params, registry=payments_registry, journal=journal)
        sandbox.clear_faults()
        if "decline" in armed:
            declined_runs.add(result.run_id)
        if _is_unknown(result):
            outcome[result.run_id] = "unknown"
            result = resume(result.run_id, registry=payments_registry, journal=journal)
            reconciled[result.status.value] += 1
        else:
            outcome[result.run_id] = result.status.value
        if result.status.value == "failed":
            error = " ".join(" | ".join(result.errors).split())
            reasons[error[:90]] += 1
            if not result.errors or "Traceback" in error or not CAUSE.search(error):
                unclear.append(error or "(no error)")
        lost += lost_events(journal.path, result.run_id, [a.to_dict() for a in result.actions])
    elapsed = time.perf_counter() - started

    requests = sandbox.requests()
    intents = objects_by_run(sandbox, "payment_intents")
    succeeded = {
        r
        for r in outcome
        if journal.run(r) is not None and journal.run(r).status == "succeeded"  # type: ignore[union-attr]
    }
    failed = set(outcome) - succeeded
    duplicates = sum(len(intents.get(r, [])) - 1 for r in succeeded if len(intents.get(r, [])) > 1)
    missing = [r for r in succeeded if not intents.get(r)]
    charged_but_failed = [r for r in failed if intents.get(r)]
    declines_retried = 0
    declined_keys: set[str] = set()
    for r in requests:  # a POST with a key already declined is a retried decline
        key = r["idempotency_key"]
        if r["method"] == "POST" and key in declined_keys:
            declines_retried += 1
        if r["fault"] == "decline" and key:
            declined_keys.add(key)
    faulted = [r for r in requests if r["fault"] and r["fault"] != "decline"]
    problems = journal.verify()
    figure(
        "faults",
        runs=runs,
        seconds=round(elapsed, 1),
        requests=len(requests),
        requests_faulted=f"{len(faulted)} ({100 * len(faulted) / max(1, len(requests)):.1f}%)",
        fault_kinds=dict(Counter(r["fault"] for r in requests if r["fault"])),
        succeeded=sum(1 for r in outcome.values() if r == "succeeded") + reconciled["succeeded"],
        failed_clear_reason=sum(1 for r in outcome.values() if r == "failed") - len(unclear),
        failed_unclear_reason=len(unclear),
        unknown_then_reconciled=dict(reconciled),
        payment_intents=sum(len(v) for k, v in intents.items() if k in outcome),
        succeeded_runs=len(succeeded),
        duplicate_payment_intents=duplicates,
        succeeded_without_payment_intent=len(missing),
        failed_runs_with_a_payment_intent=len(charged_but_failed),
        journal_events_lost=len(lost),
        journal_verify_problems=len(problems),
        declines=len(declined_keys),
        declines_retried=declines_retried,
    )
    top = reasons.most_common(6)
    figure("faults: failure reasons", **{f"#{i}": f"{n}x {r}" for i, (r, n) in enumerate(top)})
    assert problems == []
    assert lost == []
    assert duplicates == 0 and missing == []
    # defect 3 (i9-unknown): a lost outcome is `unknown`, reconciled on resume, never `failed`
    assert charged_but_failed == [], f"failed runs that charged: {charged_but_failed}"
    assert declines_retried == 0
    # defect 9 (i9-unknown): a failure names its cause (HTTP status, error type, ...)
    assert unclear == [], Counter(unclear).most_common(3)


def test_lost_charge_outcomes_are_unknown_then_reconciled_once(
    sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    """Stripe charged, then every answer (first and all retries) was lost: the run cannot
    know, so it is ``unknown`` (never ``failed``), and ``resume`` reconciles it to the one
    PaymentIntent Stripe holds. Fails on main before i9-unknown (defect 3)."""
    runs = scaled(3, 25)
    customer = new_customer(sandbox)
    statuses: Counter[str] = Counter()
    after_resume: Counter[str] = Counter()
    for _ in range(runs):
        sandbox.inject("drop_after", match="/v1/payment_intents", method="POST")
        sandbox.inject("reset", match="/v1/payment_intents", method="POST", times=10)
        result = run(
            SOP,
            {"operation": "charge", "customer_id": customer, "amount": 1234},
            registry=payments_registry,
            journal=journal,
        )
        sandbox.clear_faults()
        statuses[result.status.value] += 1
        try:
            resumed = resume(result.run_id, registry=payments_registry, journal=journal)
            after_resume[resumed.status.value] += 1
        except SopError as exc:  # the figure says what resume did
            after_resume[f"refused: {re.sub('[0-9a-f]{32}', 'RUN', str(exc))[:60]}"] += 1
    intents = objects_by_run(sandbox, "payment_intents")
    per_run = Counter(len(v) for k, v in intents.items() if k)
    figure(
        "faults: lost outcomes",
        runs=runs,
        first_status=dict(statuses),
        after_resume=dict(after_resume),
        payment_intents_per_run=dict(per_run),
    )
    assert per_run == {1: runs}  # Stripe holds exactly one charge per run
    assert statuses == {"unknown": runs}
    assert after_resume == {"succeeded": runs}
