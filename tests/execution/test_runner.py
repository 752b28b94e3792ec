"""The runner against a temporary SOP and its own Registry: real parser, plan, SQLite journal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.binding.registry import Registry
from engine.errors import (
    ConfirmationRequired,
    NotApplicable,
    PlanRefused,
    SopError,
    SopFailure,
)
from engine.execution.runner import ActionStatus, RunResult, RunStatus, resume, run
from engine.language.parser import parse
from engine.model import Sop
from engine.storage.journal import Journal

SOP_TEXT = """\
# Demo Payments

**Version**: 2.0.0

## Overview

A procedure for the runner tests.

## Parameters

- **operation** (string): What to do
  - Values: `charge` | `refund`
- **amount** (integer): Amount in cents

## Steps

### 1. Validate

**Actions**:
- MUST verify the customer
- SHOULD check the customer is not flagged
- MAY check the fraud score

**Validation**:
- Customer is valid

**Error Handling**:
- If customer not found: Return error with "Customer not found" message
- If network error: Retry with exponential backoff (max 2 retries)

### 2. Execute

**Actions**:
- MUST call the payment API

**For Refunds**:
- MUST refund the payment

### 3. Finish

**Actions**:
- MUST write the receipt

## Error Recovery

| Error Type | Recovery Procedure |
|------------|-------------------|
| Rate limited | Wait and retry with exponential backoff |
| Insufficient funds | Notify user, do not retry |
| Card declined | Notify user, suggest alternative payment |

## Security Considerations

- MUST validate all input parameters
- SHOULD require confirmation for refunds > $100
"""


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOP_RETRY_BASE_SECONDS", "0.001")


@pytest.fixture
def sop(tmp_path: Path) -> Sop:
    path = tmp_path / "demo-payments.sop.md"
    path.write_text(SOP_TEXT, encoding="utf-8")
    parsed = parse(SOP_TEXT, path=str(path))
    assert not [d for d in parsed.diagnostics if d.severity.value == "error"], parsed.diagnostics
    return parsed


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db")


class Pack:
    """A registry whose handlers log calls to a list and a file (the side effect to look for)."""

    def __init__(self, tmp_path: Path) -> None:
        self.registry = Registry()
        self.calls: list[tuple[str, int, str]] = []
        self.effects = tmp_path / "effects.txt"
        self.overrides: dict[str, Callable[..., Any]] = {}
        for pattern, name in (
            ("validate all input parameters", "guard"),
            ("verify the customer", "verify"),
            ("call the payment API", "call_api"),
            ("write the receipt", "receipt"),
        ):
            self._bind(pattern, name)

    def _bind(self, pattern: str, name: str, kind: str = "action") -> None:
        def handler(ctx: Any, **captures: Any) -> Any:
            self.calls.append((name, ctx.attempt, ctx.idempotency_key()))
            with self.effects.open("a") as fh:
                fh.write(name + "\n")
            custom = self.overrides.get(name)
            return custom(ctx, **captures) if custom else None

        handler.__name__ = handler.__qualname__ = name
        decorate = self.registry.check if kind == "check" else self.registry.action
        decorate(pattern)(handler)

    def bind(self, pattern: str, name: str, func: Callable[..., Any] | None = None) -> None:
        self._bind(pattern, name)
        if func is not None:
            self.overrides[name] = func

    def check(self, pattern: str, name: str, func: Callable[..., Any]) -> None:
        self._bind(pattern, name, kind="check")
        self.overrides[name] = func

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def pack(tmp_path: Path) -> Pack:
    p = Pack(tmp_path)
    p.check("Customer is valid", "valid", lambda ctx: True)
    return p


def _line(fragment: str) -> int:
    return next(i for i, t in enumerate(SOP_TEXT.splitlines(), 1) if fragment in t)


def _by_text(result: RunResult, text: str) -> Any:
    return next(a for a in result.actions if a.text == text)


def _charge(sop: Sop, pack: Pack, journal: Journal, **kw: Any) -> RunResult:
    return run(
        sop, {"operation": "charge", "amount": 500}, registry=pack.registry, journal=journal, **kw
    )


# -- plan refusal and skips -----------------------------------------------------------


def test_missing_must_refuses_before_any_handler(
    sop: Sop, journal: Journal, tmp_path: Path
) -> None:
    pack = Pack(tmp_path)
    # no check handler: "Customer is valid" (a MUST-level check) is unbound
    with pytest.raises(PlanRefused) as info:
        _charge(sop, pack, journal)
    assert info.value.lines == [
        f"{sop.path}:{_line('- Customer is valid')}: MUST Customer is valid"
    ]
    assert not pack.effects.exists()  # the guard would have written it first
    assert journal.runs() == []


def test_refusal_names_every_unbound_line(sop: Sop, journal: Journal) -> None:
    with pytest.raises(PlanRefused) as info:
        run(sop, {"operation": "refund", "amount": 1}, registry=Registry(), journal=journal)
    lines = info.value.lines
    assert f"{sop.path}:{_line('verify the customer')}: MUST verify the customer" in lines
    assert f"{sop.path}:{_line('refund the payment')}: MUST refund the payment" in lines
    assert all(": SHOULD " not in line for line in lines)
    assert str(info.value).startswith("refusing to run, unbound: ")


def test_missing_should_runs_to_success_and_reports_skips(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.SUCCEEDED, result.errors
    assert pack.names() == ["guard", "verify", "valid", "call_api", "receipt"]
    flagged = _by_text(result, "check the customer is not flagged")
    assert (flagged.status, flagged.reason, flagged.level) == (
        ActionStatus.SKIPPED,
        "no handler",
        "SHOULD",
    )
    assert _by_text(result, "check the fraud score").reason == "no handler"
    assert _by_text(result, "require confirmation for refunds > $100").reason == "no handler"
    refund = _by_text(result, "refund the payment")
    assert refund.status is ActionStatus.SKIPPED
    assert refund.reason == "branch 'For Refunds' not selected (operation=charge)"
    data = result.to_dict()  # validates against schemas/run-result.schema.json
    assert data["status"] == "succeeded" and len(data["actions"]) == len(sop.all_actions())


def test_not_applicable_is_skipped_with_reason(sop: Sop, pack: Pack, journal: Journal) -> None:
    def flagged(ctx: Any) -> None:
        raise NotApplicable("no risk service configured")

    pack.bind("check the customer is not flagged", "flagged", flagged)
    result = _charge(sop, pack, journal)
    action = _by_text(result, "check the customer is not flagged")
    assert action.status is ActionStatus.SKIPPED
    assert action.reason == "not applicable: no risk service configured"
    assert result.ok


# -- failures and the SOP's messages --------------------------------------------------


def test_failed_must_ends_run_with_the_sops_message(sop: Sop, pack: Pack, journal: Journal) -> None:
    def verify(ctx: Any) -> None:
        raise SopFailure("Customer not found.", "cus_X does not exist")

    pack.overrides["verify"] = verify
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.FAILED
    assert result.errors == ["Customer not found"]
    assert pack.names() == ["guard", "verify"]  # nothing after the failed MUST
    api = _by_text(result, "call the payment API")
    assert api.status is ActionStatus.SKIPPED and api.reason.startswith("not reached")
    assert _by_text(result, "verify the customer").reason == "Customer not found"


def test_error_rule_of_another_step_and_unmatched_condition(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    pack.overrides["call_api"] = lambda ctx: (_ for _ in ()).throw(SopFailure("customer not found"))
    assert _charge(sop, pack, journal).errors == ["Customer not found"]
    pack.calls.clear()
    pack.overrides["call_api"] = lambda ctx: (_ for _ in ()).throw(SopFailure("odd", "odd thing"))
    assert _charge(sop, pack, journal).errors == ["odd thing"]
    pack.overrides["call_api"] = lambda ctx: (_ for _ in ()).throw(ValueError("bad amount 5"))
    assert _charge(sop, pack, journal).errors == ["ValueError: bad amount 5"]  # a bug: its type


def test_check_returning_false_fails(sop: Sop, journal: Journal, tmp_path: Path) -> None:
    pack = Pack(tmp_path)
    pack.check("Customer is valid", "valid", lambda ctx: False)
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.FAILED
    assert result.errors == ["check failed: Customer is valid"]


def test_failed_should_is_a_warning(sop: Sop, pack: Pack, journal: Journal) -> None:
    def flagged(ctx: Any) -> None:
        raise RuntimeError("risk API down")

    pack.bind("check the customer is not flagged", "flagged", flagged)
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.SUCCEEDED
    assert result.errors == []
    assert result.warnings == [
        f"line {_line('not flagged')}: SHOULD check the customer is not flagged:"
        " RuntimeError: risk API down"
    ]
    assert pack.names()[-1] == "receipt"


# -- retries --------------------------------------------------------------------------


def _failing(times: int, exc: Callable[[], BaseException]) -> Callable[[Any], None]:
    def handler(ctx: Any) -> None:
        if ctx.attempt <= times:
            raise exc()

    return handler


def test_network_error_retried_per_error_handling_rule(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    pack.overrides["verify"] = _failing(2, lambda: SopFailure("Network error"))
    result = _charge(sop, pack, journal)
    assert result.ok
    verify = [c for c in pack.calls if c[0] == "verify"]
    assert [c[1] for c in verify] == [1, 2, 3]
    assert len({c[2] for c in verify}) == 1  # same idempotency key every attempt
    assert _by_text(result, "verify the customer").attempts == 3
    events = [
        e.type
        for e in journal.events(result.run_id)
        if e.action_id == f"step1:action:L{_line('verify the customer')}"
    ]
    assert events.count("action_started") == 3 and events.count("action_retry") == 2


def test_retry_budget_comes_from_the_sop(sop: Sop, pack: Pack, journal: Journal) -> None:
    pack.overrides["verify"] = _failing(99, lambda: SopFailure("network error"))
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.FAILED
    assert _by_text(result, "verify the customer").attempts == 3  # max 2 retries


def test_recovery_table_rate_limited_default_budget(sop: Sop, pack: Pack, journal: Journal) -> None:
    pack.overrides["call_api"] = _failing(99, lambda: SopFailure("rate limited"))
    result = _charge(sop, pack, journal)
    assert _by_text(result, "call the payment API").attempts == 4  # 3 retries by default


@pytest.mark.parametrize(
    "exc",
    [
        lambda: SopFailure("card declined", retryable=True),
        lambda: SopFailure("Insufficient funds", retryable=True),
        lambda: SopFailure("payment failed"),
        lambda: RuntimeError("boom"),
    ],
)
def test_not_retried(
    sop: Sop, pack: Pack, journal: Journal, exc: Callable[[], BaseException]
) -> None:
    pack.overrides["call_api"] = _failing(99, exc)
    result = _charge(sop, pack, journal)
    assert result.status is RunStatus.FAILED
    assert _by_text(result, "call the payment API").attempts == 1


def test_handler_marked_retryable(sop: Sop, pack: Pack, journal: Journal) -> None:
    pack.overrides["call_api"] = _failing(1, lambda: SopFailure("glitch", retryable=True))
    result = _charge(sop, pack, journal)
    assert result.ok and _by_text(result, "call the payment API").attempts == 2


# -- timeouts -------------------------------------------------------------------------


def test_handler_timeout(sop: Sop, pack: Pack, journal: Journal) -> None:
    release = threading.Event()

    @pack.registry.action("check the fraud score", timeout=0.2)
    def slow(ctx: Any) -> None:
        release.wait(10)

    started = time.monotonic()
    result = _charge(sop, pack, journal)
    assert time.monotonic() - started < 5
    events = len(journal.events(result.run_id))
    release.set()  # the abandoned handler returns now: it must not journal anything more
    time.sleep(0.2)
    assert len(journal.events(result.run_id)) == events
    fraud = _by_text(result, "check the fraud score")
    assert (fraud.status, fraud.reason) == (ActionStatus.FAILED, "timed out after 0.2 s")
    assert result.ok  # a MAY line: recorded as a warning, the run goes on
    assert pack.names()[-1] == "receipt"


def test_default_timeout_from_environment(
    sop: Sop, pack: Pack, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOP_ACTION_TIMEOUT_SECONDS", "0.1")
    release = threading.Event()
    pack.overrides["call_api"] = lambda ctx: release.wait(10)
    result = _charge(sop, pack, journal)
    release.set()
    assert result.errors == ["timed out after 0.1 s"]


def test_a_timed_out_handler_does_not_hold_up_the_next_run(
    sop: Sop, pack: Pack, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers run outside the caller's thread, so a stuck one can be timed out; the
    thread still stuck in it is not the one the next run's handlers run in."""
    threads: list[threading.Thread] = []
    release = threading.Event()

    def stuck(ctx: Any) -> None:
        threads.append(threading.current_thread())
        release.wait(10)

    pack.overrides["call_api"] = stuck
    monkeypatch.setenv("SOP_ACTION_TIMEOUT_SECONDS", "0.2")
    timed_out = _charge(sop, pack, journal, run_id="stuck-run")
    assert timed_out.status is RunStatus.FAILED
    pack.overrides["call_api"] = lambda ctx: threads.append(threading.current_thread())
    assert _charge(sop, pack, journal).ok
    assert threads[0] is not threading.current_thread()
    assert threads[1] is not threads[0] and threads[0].is_alive()
    release.set()


# -- context --------------------------------------------------------------------------


def test_a_handler_cannot_rewrite_its_attempt_number(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    """The runner reports attempts from the context: a handler may read it, not set it."""

    def rewrite(ctx: Any) -> None:
        ctx.attempt = 99

    pack.overrides["call_api"] = rewrite
    result = _charge(sop, pack, journal)
    api = _by_text(result, "call the payment API")
    assert (api.status, api.attempts) == (ActionStatus.FAILED, 1)
    assert not result.ok


def test_context_services_records_log_and_output(sop: Sop, pack: Pack, journal: Journal) -> None:
    made: list[str] = []

    @pack.registry.service("stripe")
    def make_stripe(ctx: Any) -> dict[str, str]:
        made.append(ctx.run_id)
        return {"client": "fake"}

    def verify(ctx: Any) -> None:
        assert ctx.params == {"operation": "charge", "amount": 500}
        ctx.state["customer"] = "cus_1"
        ctx.log.info("card %s cvv 123", "4242 4242 4242 4242")
        ctx.record("transaction", {"card": "4242424242424242", "cvc": "999", "amount": 500})

    def call_api(ctx: Any) -> None:
        assert ctx.services["stripe"] == {"client": "fake"}
        assert ctx.services["stripe"] is ctx.services["stripe"]
        ctx.output.update(success=True, transaction_id="pi_1", card="4242424242424242")

    pack.overrides.update(verify=verify, call_api=call_api)
    result = _charge(sop, pack, journal)
    assert result.ok and made == [result.run_id]
    assert result.to_dict()["output"] == {
        "success": True,
        "transaction_id": "pi_1",
        "card": "424242******4242",
    }
    assert journal.records(result.run_id)[0]["data"] == {"card": "424242******4242", "amount": 500}
    logs = [e.data for e in journal.events(result.run_id) if e.type == "log"]
    assert logs == [{"level": "INFO", "message": "card 424242******4242 cvv ***"}]
    db = Path(journal.path).read_bytes() + Path(str(journal.path) + "-wal").read_bytes()
    assert b"4242424242424242" not in db and b"4242 4242 4242 4242" not in db


def test_services_given_to_run_are_used(sop: Sop, pack: Pack, journal: Journal) -> None:
    seen: list[Any] = []
    pack.overrides["call_api"] = lambda ctx: seen.append(ctx.services["stripe"])
    _charge(sop, pack, journal, services={"stripe": "given"})
    assert seen == ["given"]


def test_run_child(sop: Sop, pack: Pack, journal: Journal) -> None:
    children: list[RunResult] = []

    def receipt(ctx: Any) -> None:
        if ctx.params["amount"] == 500:  # the parent; the child (amount 1) just writes
            children.append(ctx.run_child(sop, {"operation": "charge", "amount": 1}))

    pack.overrides["receipt"] = receipt
    result = _charge(sop, pack, journal)
    assert result.ok and len(children) == 1
    child = children[0]
    assert child.ok and child.parent_run_id == result.run_id
    assert [r.run_id for r in journal.children(result.run_id)] == [child.run_id]


# -- confirmation ---------------------------------------------------------------------

OPERATION = {"refund": 15000, "payment_intent": "pi_1"}


def _confirming_pack(pack: Pack, confirmed_seen: list[bool]) -> None:
    def gate(ctx: Any, threshold: int) -> None:
        confirmed_seen.append(ctx.confirmed)
        if ctx.params["amount"] > threshold * 100 and not ctx.confirms(OPERATION):
            raise ConfirmationRequired(
                "Refund amount exceeds $100. Please confirm.",
                OPERATION,
                {"requires_confirmation": True, "pending_refund": {"amount": 15000}},
            )
        ctx.output["confirmed_refund"] = True

    pack.registry.action("require confirmation for refunds > ${threshold:d}")(gate)
    pack.bind("refund the payment", "refund")


def _refund(sop: Sop, pack: Pack, journal: Journal, **kw: Any) -> RunResult:
    return run(
        sop, {"operation": "refund", "amount": 15000}, registry=pack.registry, journal=journal, **kw
    )


def test_confirmation_pause_and_resume(sop: Sop, pack: Pack, journal: Journal) -> None:
    seen: list[bool] = []
    _confirming_pack(pack, seen)
    paused = _refund(sop, pack, journal)
    assert paused.status is RunStatus.PAUSED
    assert paused.pending is not None
    token = paused.pending["token"]
    assert paused.pending["operation"] == OPERATION
    assert paused.pending["message"] == "Refund amount exceeds $100. Please confirm."
    assert paused.output["requires_confirmation"] is True
    gate = _by_text(paused, "require confirmation for refunds > $100")
    assert gate.status is ActionStatus.PENDING
    assert pack.names() == ["guard"]  # nothing after the gate ran
    assert journal.run(paused.run_id).status == "paused"  # type: ignore[union-attr]
    raw = Path(journal.path).read_bytes() + Path(str(journal.path) + "-wal").read_bytes()
    assert token.encode() not in raw  # only its hash is stored
    paused.to_dict()

    done = resume(paused.run_id, confirm=token, registry=pack.registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert seen == [False, True]
    assert pack.names() == ["guard", "verify", "valid", "call_api", "refund", "receipt"]
    assert done.output == {"confirmed_refund": True}  # the pause's output was answered
    assert _by_text(done, "require confirmation for refunds > $100").status is ActionStatus.PASSED

    with pytest.raises(SopError, match="confirmation token already used"):
        resume(paused.run_id, confirm=token, registry=pack.registry, journal=journal)
    with pytest.raises(SopError, match="confirmation token already used"):
        _refund(sop, pack, journal, confirm=token)


def test_confirm_through_run_with_same_params(sop: Sop, pack: Pack, journal: Journal) -> None:
    _confirming_pack(pack, [])
    paused = _refund(sop, pack, journal)
    token = paused.pending["token"]  # type: ignore[index]
    with pytest.raises(SopError, match="amount differs"):
        run(
            sop,
            {"operation": "refund", "amount": 99999},
            registry=pack.registry,
            journal=journal,
            confirm=token,
        )
    done = _refund(sop, pack, journal, confirm=token)
    assert done.run_id == paused.run_id and done.ok


def test_wrong_token_and_missing_token(sop: Sop, pack: Pack, journal: Journal) -> None:
    _confirming_pack(pack, [])
    first = _refund(sop, pack, journal)
    second = _refund(sop, pack, journal)
    with pytest.raises(SopError, match="does not match any paused run"):
        resume(first.run_id, confirm="sopc_nope", registry=pack.registry, journal=journal)
    with pytest.raises(SopError, match=f"does not match run {first.run_id}"):
        resume(
            first.run_id, confirm=second.pending["token"], registry=pack.registry, journal=journal
        )  # type: ignore[index]
    with pytest.raises(SopError, match="waiting for confirmation"):
        resume(first.run_id, registry=pack.registry, journal=journal)
    assert journal.run(first.run_id).status == "paused"  # type: ignore[union-attr]


def test_expired_token(
    sop: Sop, pack: Pack, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOP_CONFIRM_TTL_SECONDS", "0.05")
    _confirming_pack(pack, [])
    paused = _refund(sop, pack, journal)
    time.sleep(0.1)
    with pytest.raises(SopError, match="confirmation token expired"):
        resume(
            paused.run_id, confirm=paused.pending["token"], registry=pack.registry, journal=journal
        )  # type: ignore[index]
    assert pack.names() == ["guard"]


def test_same_operation_asked_again_fails_new_operation_pauses_again(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    operations = [OPERATION, OPERATION]

    def gate(ctx: Any, threshold: int) -> None:
        raise ConfirmationRequired("confirm", operations.pop(0))

    pack.registry.action("require confirmation for refunds > ${threshold:d}")(gate)
    pack.bind("refund the payment", "refund")
    paused = _refund(sop, pack, journal)
    failed = resume(
        paused.run_id, confirm=paused.pending["token"], registry=pack.registry, journal=journal
    )  # type: ignore[index]
    # the gate is a SHOULD line: its failure is a warning, not the end of the run
    assert failed.status is RunStatus.SUCCEEDED
    assert "asked again to confirm" in failed.warnings[0]
    gate = _by_text(failed, "require confirmation for refunds > $100")
    assert gate.status is ActionStatus.FAILED

    operations[:] = [OPERATION, {"refund": 20000}]
    paused = _refund(sop, pack, journal)
    again = resume(
        paused.run_id, confirm=paused.pending["token"], registry=pack.registry, journal=journal
    )  # type: ignore[index]
    assert again.status is RunStatus.PAUSED
    assert again.pending["token"] != paused.pending["token"]  # type: ignore[index]


# -- resume of an interrupted run (in process; the SIGKILL version is test_resume_kill) --


def test_resume_interrupted_run_restores_state(sop: Sop, pack: Pack, journal: Journal) -> None:
    def verify(ctx: Any) -> None:
        ctx.state["customer"] = {"id": "cus_1"}
        ctx.output["customer"] = "cus_1"

    crash = [True]

    def call_api(ctx: Any) -> None:
        assert ctx.state["customer"] == {"id": "cus_1"}
        if crash and crash.pop():
            raise KeyboardInterrupt  # like a kill: the run stops mid-action

    pack.overrides.update(verify=verify, call_api=call_api)
    with pytest.raises(KeyboardInterrupt):
        _charge(sop, pack, journal)
    (row,) = journal.runs()
    assert row.status == "running"
    done = resume(row.run_id, registry=pack.registry, journal=journal)
    assert done.ok and done.output == {"customer": "cus_1"}
    assert pack.names() == ["guard", "verify", "valid", "call_api", "call_api", "receipt"]
    keys = [c[2] for c in pack.calls if c[0] == "call_api"]
    assert keys[0] == keys[1]
    with pytest.raises(SopError, match="already succeeded"):
        resume(row.run_id, registry=pack.registry, journal=journal)


def test_resume_refuses_changed_sop(sop: Sop, pack: Pack, journal: Journal) -> None:
    pack.overrides["call_api"] = lambda ctx: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        _charge(sop, pack, journal)
    assert sop.path is not None
    Path(sop.path).write_text(SOP_TEXT.replace("2.0.0", "2.0.1"), encoding="utf-8")
    (row,) = journal.runs()
    with pytest.raises(SopError, match="changed since the run started"):
        resume(row.run_id, registry=pack.registry, journal=journal)


def test_unknown_run(journal: Journal) -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="unknown run 'nope'"):
        resume("nope", journal=journal)


def test_resume_after_a_registration_rebinds_and_acts_once(
    sop: Sop, pack: Pack, journal: Journal
) -> None:
    """The plan's bindings are kept by the registry between runs; a handler registered
    while a run was interrupted is bound when it resumes, and what finished before the
    crash is not run again (the in-flight action reruns with the same key)."""
    crash = [True]

    def call_api(ctx: Any) -> None:
        if crash and crash.pop():
            raise KeyboardInterrupt  # like a kill: the run stops mid-action

    pack.overrides.update(call_api=call_api)
    with pytest.raises(KeyboardInterrupt):
        _charge(sop, pack, journal)
    (row,) = journal.runs()
    assert _by_text(_charge(sop, pack, journal), "check the fraud score").status is (
        ActionStatus.SKIPPED  # unbound: a MAY line without a handler
    )
    del pack.calls[:]
    pack.bind("check the fraud score", "fraud")
    done = resume(row.run_id, registry=pack.registry, journal=journal)
    assert done.ok, done.errors
    # the new handler is bound; what finished before the crash is not run again
    assert pack.names() == ["fraud", "call_api", "receipt"]
    assert _by_text(done, "check the fraud score").status is ActionStatus.PASSED
    key = next(c[2] for c in pack.calls if c[0] == "call_api")
    started = [
        e
        for e in journal.events(row.run_id)
        if e.type == "action_started" and e.data["idempotency_key"] == key
    ]
    assert len(started) == 2  # the in-flight call_api: before the crash, and once again
