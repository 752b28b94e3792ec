"""Crashes: SIGKILL a real ``sop run`` at action boundaries and inside Stripe calls, resume.

Boundaries are the runner's crash points (``SOP_CRASH_AFTER=EVENT:ACTION_ID``: right after
``action_started`` / ``action_finished`` is committed, or ``handler_returned`` before the
outcome is journaled) of every action a charge, a refund and a subscription run executes
(child runs included). The short version takes the boundaries around the Stripe call plus a
seeded sample; ``make soak`` takes them all. After each crash: ``resume`` succeeds, Stripe
holds exactly one PaymentIntent / Refund / Subscription, every POST reached Stripe at most
once per Idempotency-Key, and every handler's own side effect (outbox mail, journal record)
happened at most once.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.binding.registry import Registry
from engine.errors import SopError
from engine.execution.runner import resume, run
from engine.language.catalog import load
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.standing_proof import (
    ROOT,
    SEED,
    SOAK,
    effects_per_key,
    figure,
    new_customer,
    new_plan,
    scaled,
)

SOP = "payment-processing"
EVENTS = ("action_started", "handler_returned", "action_finished")
#: The action that calls Stripe, per operation (by its words), and what it creates.
STRIPE_ACTION = {
    "charge": "use appropriate Stripe API endpoint",
    "refund": "use appropriate Stripe API endpoint",
    "subscription": "through the Stripe Subscriptions API",
}
#: The charge line whose handler writes the transaction record (a local side effect).
RECORDS_LINE = "update internal records"
CREATED = {"charge": "payment_intents", "refund": "refunds", "subscription": "subscriptions"}
TALLY: Counter[str] = Counter()


@dataclass
class Case:
    """One operation, ready to run: its parameters and how to count what it created."""

    op: str
    params: dict[str, Any]
    customer: str
    payment_intent: str | None = None

    def argv(self) -> list[str]:
        out = ["run", SOP, "--json"]
        for key, value in self.params.items():
            out += ["-p", f"{key}={value}"]
        return out

    def created(self, sandbox: Sandbox) -> list[str]:
        """Ids of the objects of this case's kind Stripe holds for it."""
        api = getattr(sandbox.client().v1, CREATED[self.op])
        found = []
        for obj in api.list({"limit": 100}).auto_paging_iter():
            data = obj.to_dict()
            if self.op == "refund":
                if data.get("payment_intent") == self.payment_intent:
                    found.append(data["id"])
            elif data.get("customer") == self.customer:
                found.append(data["id"])
        return found


def _case(op: str, sandbox: Sandbox, registry: Registry, journal: Journal) -> Case:
    customer = new_customer(sandbox, f"crash-{op}@example.invalid")
    if op == "charge":
        return Case(op, {"operation": "charge", "customer_id": customer, "amount": 2500}, customer)
    if op == "subscription":
        params = {"operation": "subscription", "customer_id": customer, "plan": new_plan(sandbox)}
        return Case(op, params, customer)
    paid = run(
        SOP,
        {"operation": "charge", "customer_id": customer, "amount": 5000},
        registry=registry,
        journal=journal,
    )
    assert paid.status.value == "succeeded", paid.errors
    pi = str(paid.output["transaction_id"])
    params = {"operation": "refund", "customer_id": customer, "payment_intent": pi, "amount": 3000}
    return Case(op, params, customer, pi)


def _env(proof_env: Path, sandbox: Sandbox, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOP_CRASH_AFTER"}
    env.update(sandbox.env(), **extra)
    return env


def _popen(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _crashed_run(journal: Journal) -> tuple[str, str]:
    """The run the kill interrupted (the newest top-level run) and its recorded status."""
    top = [r for r in journal.runs() if r.parent_run_id is None]
    newest = max(top, key=lambda r: r.started)
    return newest.run_id, newest.status


def _all_runs(journal: Journal, run_id: str) -> Iterator[str]:
    yield run_id
    for child in journal.children(run_id):
        yield from _all_runs(journal, child.run_id)


def _handler_effects(journal: Journal, outbox: Path, run_id: str) -> list[str]:
    """Handler side effects that happened more than once for this run (and its children)."""
    twice: list[str] = []
    for rid in _all_runs(journal, run_id):
        mails = Counter(
            p.name.split(f"{rid}-", 1)[1].rsplit(".", 1)[0].rstrip("-0123456789")
            for p in outbox.glob(f"*{rid}-*.eml")
        )
        twice += [f"{rid}: mail {k} x{n}" for k, n in mails.items() if n > 1]
        records = Counter((r["action_id"], r["kind"]) for r in journal.records(rid))
        twice += [f"{rid}: record {k} x{n}" for k, n in records.items() if n > 1]
    return twice


def _anonymous(problem: str) -> str:
    """A problem without its run ids, so equal problems of different runs count together."""
    return re.sub(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f-]{27}", "RUN", problem)[:120]


def _problems(
    case: Case, sandbox: Sandbox, journal: Journal, outbox: Path, run_id: str
) -> list[str]:
    """Everything that happened other than exactly once for this case's run."""
    problems: list[str] = []
    created = case.created(sandbox)
    if len(created) != 1:
        problems.append(f"Stripe holds {len(created)} {CREATED[case.op]}: {created}")
    repeated = {k: n for k, n in effects_per_key(sandbox.requests()).items() if n > 1}
    if repeated:
        problems.append(f"POSTs executed more than once per key: {repeated}")
    problems += [
        f"handler side effect repeated: {t}" for t in _handler_effects(journal, outbox, run_id)
    ]
    if journal.verify():
        problems.append(f"verify: {journal.verify()[:2]}")
    if len(created) == 1:
        TALLY[f"{case.op}: exactly one {CREATED[case.op][:-1]}"] += 1
    return problems


def _check_once(
    case: Case, sandbox: Sandbox, journal: Journal, outbox: Path, run_id: str, where: str
) -> None:
    problems = _problems(case, sandbox, journal, outbox, run_id)
    assert problems == [], f"{where}: {problems}"


def _reference_actions(op: str, sandbox: Sandbox, registry: Registry, tmp: Path) -> list[str]:
    """Action ids a run of ``op`` executes (child runs included), in order."""
    with Journal(tmp / f"reference-{op}.db") as jr:
        case = _case(op, sandbox, registry, jr)
        result = run(SOP, case.params, registry=registry, journal=jr)
        assert result.status.value == "succeeded", result.errors
        return [
            e.action_id
            for rid in _all_runs(jr, result.run_id)
            for e in jr.events(rid)
            if e.type == "action_started" and e.action_id
        ]


def _boundaries(op: str, actions: list[str], stripe_ids: set[str]) -> list[tuple[str, str]]:
    """Every boundary (soak); else the ones around the Stripe call, the window after the
    charge's record-writing handler returned, and one seeded sample."""
    every = [(event, aid) for aid in actions for event in EVENTS]
    if SOAK:
        return every
    around_stripe = [b for b in every if b[1] in stripe_ids]
    rest = [b for b in every if b[1] not in stripe_ids]
    rng = random.Random(f"{SEED}-{op}")
    if op != "charge":
        return [("handler_returned", next(iter(stripe_ids))), *rng.sample(rest, 1)]
    records = next(a.id for a in load(SOP).all_actions() if a.text.startswith(RECORDS_LINE))
    return [*around_stripe, ("handler_returned", records), *rng.sample(rest, 1)]


@pytest.mark.parametrize("op", ["charge", "refund", "subscription"])
def test_sigkill_at_action_boundaries_then_resume(
    op: str, sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    actions = _reference_actions(op, sandbox, payments_registry, proof_env)
    stripe_ids = _stripe_actions(op)
    assert stripe_ids <= set(actions)
    boundaries = _boundaries(op, actions, stripe_ids)
    started = time.perf_counter()
    outcomes: Counter[str] = Counter()
    found: dict[str, list[str]] = {}
    for event, aid in boundaries:
        where = f"{op} killed at {event}:{aid}"
        case = _case(op, sandbox, payments_registry, journal)
        env = _env(proof_env, sandbox, SOP_CRASH_AFTER=f"{event}:{aid}")
        crashed = subprocess.run(
            [sys.executable, "-m", "engine", *case.argv()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        run_id, status = _crashed_run(journal)
        if crashed.returncode == 0:  # the handler raised (not applicable): no such point
            outcomes["point not on this run's path"] += 1
        elif crashed.returncode != -signal.SIGKILL:
            found[where] = [f"exit {crashed.returncode}: {crashed.stderr[-300:]}"]
            continue
        elif status == "running":
            try:
                result = resume(run_id, registry=payments_registry, journal=journal)
            except SopError as exc:  # a run that cannot be resumed is stuck: a finding
                found[where] = [f"resume refused: {_anonymous(str(exc))}"]
                outcomes["resume refused"] += 1
                continue
            outcomes[result.status.value] += 1
            status = result.status.value
        else:  # killed after the commit that finished the run: nothing left to do
            outcomes[f"already {status} when killed"] += 1
        problems = _problems(case, sandbox, journal, proof_env / "outbox", run_id)
        if status != "succeeded":
            problems.append(f"run {status}")
        if problems:
            found[where] = problems
    figure(
        f"crashes: {op} at action boundaries",
        actions=len(actions),
        boundaries_available=len(actions) * len(EVENTS),
        boundaries_killed=len(boundaries),
        resumed=dict(outcomes),
        exactly_one_object=TALLY[f"{op}: exactly one {CREATED[op][:-1]}"],
        boundaries_with_a_repeat=len(found),
        repeats=dict(Counter(_anonymous(p) for v in found.values() for p in v)),
        seconds=round(time.perf_counter() - started, 1),
    )
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


def _stripe_actions(op: str) -> set[str]:
    """The id of the line that calls Stripe for ``op`` (in the SOP that performs it)."""
    name = "subscription-management" if op == "subscription" else SOP
    return {a.id for a in load(name).all_actions() if STRIPE_ACTION[op] in a.text}


POST_PATH = {"charge": "/v1/payment_intents", "refund": "/v1/refunds"}
POST_PATH["subscription"] = "/v1/subscriptions"


def _kill_when_in_flight(proc: subprocess.Popen[str], sandbox: Sandbox, path: str) -> None:
    """SIGKILL ``proc`` while its POST to ``path`` is held by the sandbox (``delay``)."""
    deadline = time.monotonic() + 60
    try:
        while not any(
            r["fault"] == "delay" and r["path"] == path and r["status"] is None
            for r in sandbox.requests()
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"the POST to {path} never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.communicate()


@pytest.mark.parametrize("op", ["charge", "refund", "subscription"])
def test_sigkill_inside_the_stripe_call_then_resume(
    op: str, sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    """Killed while Stripe is still working on the request (it completes after the kill):
    resume re-sends the same key and gets Stripe's one answer, not a second object."""
    rounds = scaled(1, 5)
    started = time.perf_counter()
    outcomes: Counter[str] = Counter()
    for i in range(rounds):
        case = _case(op, sandbox, payments_registry, journal)
        sandbox.inject("delay", match=POST_PATH[op], method="POST", seconds=1.0)
        proc = _popen(case.argv(), _env(proof_env, sandbox))
        _kill_when_in_flight(proc, sandbox, POST_PATH[op])
        assert proc.returncode == -signal.SIGKILL
        run_id, status = _crashed_run(journal)
        assert status == "running"
        result = resume(run_id, registry=payments_registry, journal=journal)
        outcomes[result.status.value] += 1
        assert result.status.value == "succeeded", result.errors
        _check_once(case, sandbox, journal, proof_env / "outbox", run_id, f"{op} in flight #{i}")
    figure(
        f"crashes: {op} killed inside the Stripe call",
        kills=rounds,
        resumed=dict(outcomes),
        seconds=round(time.perf_counter() - started, 1),
    )


@pytest.mark.parametrize("op", ["charge", "subscription"])
def test_two_resumes_at_once_run_the_rest_once(
    op: str, sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    """Two ``sop resume`` of one crashed run started together: one owns the run, the other
    is refused naming the owner; every action after the crash runs once. Fails on main
    before i9-journal (defect 2: both resumes execute)."""
    rounds = scaled(1, 5)
    codes: Counter[str] = Counter()
    repeated: list[str] = []
    (aid,) = _stripe_actions(op)
    for i in range(rounds):
        case = _case(op, sandbox, payments_registry, journal)
        env = _env(proof_env, sandbox, SOP_CRASH_AFTER=f"handler_returned:{aid}")
        crashed = subprocess.run(
            [sys.executable, "-m", "engine", *case.argv()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-500:]
        run_id, _ = _crashed_run(journal)
        # the re-sent POST is held 1 s, so the two resumes certainly overlap
        sandbox.inject("delay", match=POST_PATH[op], method="POST", seconds=1.0, times=2)
        procs = [_popen(["resume", run_id, "--json"], _env(proof_env, sandbox)) for _ in "ab"]
        done = [(p, *p.communicate(timeout=120)) for p in procs]
        sandbox.clear_faults()
        ok = [p for p, _, _ in done if p.returncode == 0]
        refused = [(out + err).strip() for p, out, err in done if p.returncode != 0]
        codes[f"exit {sorted(p.returncode for p in procs)}"] += 1
        for err in refused:
            assert err and "Traceback" not in err, done
        results = [json.loads(out) for p, out, _ in done if p.returncode == 0]
        assert all(r["status"] == "succeeded" for r in results), results
        repeated += _handler_effects(journal, proof_env / "outbox", run_id)
        figure(
            f"crashes: two resumes at once ({op})",
            rounds=rounds,
            exit_codes=dict(codes),
            handler_effects_repeated=len(repeated),
        )
        _check_once(case, sandbox, journal, proof_env / "outbox", run_id, f"{op} two resumes #{i}")
        assert len(ok) == 1, f"both resumes ran: {[e[-200:] for _, _, e in done]}"
