"""Reject, cancel and approve through the Python API, with a real SQLite journal.

A rejected run's pending action never executes and its token is spent; a cancelled run
never resumes; who decided and why is in the chained journal, which still verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import SopError
from engine.execution.decide import approve
from engine.execution.runner import RunStatus
from engine.storage.journal import Journal

SOP = """\
# Refund Demo SOP

**Version**: 0.1.0

## Overview

Refunds an amount; refunds above $100 wait for a person to confirm.

## Parameters

- **amount** (integer): Amount in cents

## Steps

### 1. Refund

**Actions**:
- MUST require confirmation for refunds > $100
- MUST issue the refund
"""


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        self.sop = tmp_path / "refund-demo.sop.md"
        self.sop.write_text(SOP, encoding="utf-8")
        self.registry = engine.Registry()
        self.refunds: list[int] = []
        self.journal = Journal(tmp_path / "journal.db")

        @self.registry.action("require confirmation for refunds > ${threshold:d}")
        def gate(ctx: Any, threshold: int) -> None:
            if ctx.params["amount"] > threshold * 100 and not ctx.confirmed:
                raise engine.ConfirmationRequired("confirm", operation={"amount": 1})

        @self.registry.action("issue the refund")
        def issue(ctx: Any) -> None:
            self.refunds.append(ctx.params["amount"])

    def paused(self) -> engine.RunResult:
        result = engine.run(
            str(self.sop), {"amount": 15000}, registry=self.registry, journal=self.journal
        )
        assert result.status is RunStatus.PAUSED and result.pending is not None
        return result

    def events(self, run_id: str, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.journal.events(run_id) if e.type == type_]


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    d = Demo(tmp_path)
    yield d
    d.journal.close()


def test_reject_ends_the_run_and_its_token_confirms_nothing(demo: Demo) -> None:
    paused = demo.paused()
    token = paused.pending["token"]  # type: ignore[index]
    rejected = engine.reject(paused.run_id, reason="duplicate", by="alice", journal=demo.journal)
    assert rejected.status is RunStatus.REJECTED
    assert rejected.pending is None and "requires_confirmation" not in rejected.output
    assert rejected.errors[-1] == "rejected by alice: duplicate"
    gate = next(a for a in rejected.actions if a.text.startswith("require confirmation"))
    assert gate.status.value == "skipped" and gate.reason == "rejected by alice: duplicate"
    rejected.to_dict()  # validates against schemas/run-result.schema.json
    with pytest.raises(SopError, match="was rejected; it cannot be resumed"):
        engine.resume(paused.run_id, confirm=token, registry=demo.registry, journal=demo.journal)
    assert demo.refunds == []
    used = demo.events(paused.run_id, "confirmation_used")
    assert [(u["by"], u["decision"], u["reason"]) for u in used] == [
        ("alice", "rejected", "duplicate")
    ]
    assert demo.events(paused.run_id, "run_rejected") == [{"by": "alice", "reason": "duplicate"}]
    assert demo.journal.run(paused.run_id).status == "rejected"  # type: ignore[union-attr]
    assert demo.journal.verify() == []


def test_reject_needs_a_paused_run_and_a_reason(demo: Demo) -> None:
    paused = demo.paused()
    with pytest.raises(engine.UsageError, match="give a reason"):
        engine.reject(paused.run_id, reason=" ", journal=demo.journal)
    engine.reject(paused.run_id, reason="no", by="a", journal=demo.journal)
    with pytest.raises(SopError, match="already rejected; nothing to reject"):
        engine.reject(paused.run_id, reason="again", journal=demo.journal)
    with pytest.raises(SopError, match="already rejected; nothing to cancel"):
        engine.cancel(paused.run_id, journal=demo.journal)


def test_a_confirmed_run_can_no_longer_be_rejected(demo: Demo) -> None:
    paused = demo.paused()
    token = paused.pending["token"]  # type: ignore[index]
    done = engine.resume(
        paused.run_id, confirm=token, by="bob", registry=demo.registry, journal=demo.journal
    )
    assert done.ok and demo.refunds == [15000]
    assert [u["by"] for u in demo.events(paused.run_id, "confirmation_used")] == ["bob"]
    with pytest.raises(SopError, match="already succeeded"):
        engine.reject(paused.run_id, reason="late", journal=demo.journal)


def test_cancel_of_a_paused_run_spends_its_token(demo: Demo) -> None:
    paused = demo.paused()
    cancelled = engine.cancel(paused.run_id, by="carol", journal=demo.journal)
    assert cancelled is not None and cancelled.status is RunStatus.CANCELLED
    assert cancelled.errors[-1] == "cancelled by carol"
    with pytest.raises(SopError, match="was cancelled"):
        engine.resume(
            paused.run_id,
            confirm=paused.pending["token"],  # type: ignore[index]
            registry=demo.registry,
            journal=demo.journal,
        )
    assert demo.refunds == [] and demo.journal.verify() == []


def test_approve_confirms_without_the_token_and_journals_the_person(demo: Demo) -> None:
    paused = demo.paused()
    done = approve(
        paused.run_id, by="dana", reason="ok", registry=demo.registry, journal=demo.journal
    )
    assert done.ok and demo.refunds == [15000]
    used = demo.events(paused.run_id, "confirmation_used")
    assert [(u["by"], u["decision"], u["reason"]) for u in used] == [("dana", "confirmed", "ok")]
    with pytest.raises(SopError, match="already succeeded"):
        approve(paused.run_id, by="dana", registry=demo.registry, journal=demo.journal)
    assert demo.refunds == [15000]


@pytest.mark.parametrize("connection", ["another", "the same"])
def test_a_cancel_request_stops_the_run_before_its_next_action(demo: Demo, connection: str) -> None:
    """The runner's check between actions, seen through the journal: a ``cancel_requested``
    event appended while the run is live, from another connection (as `sop cancel` has)
    or from the run's own (``engine.cancel`` in another thread of the same process)."""
    seen: list[str] = []

    @demo.registry.action("require confirmation for refunds > ${threshold:d}", sop="refund-demo")
    def gate(ctx: Any, threshold: int) -> None:
        seen.append("gate")
        data = {"by": "erin", "reason": "stop"}
        if connection == "another":
            with Journal(demo.journal.path) as other:
                other.append(ctx.run_id, "cancel_requested", data=data)
        else:
            demo.journal.append(ctx.run_id, "cancel_requested", data=data)

    result = engine.run(str(demo.sop), {"amount": 1}, registry=demo.registry, journal=demo.journal)
    assert result.status is RunStatus.CANCELLED
    assert seen == ["gate"] and demo.refunds == []  # the next action never ran
    assert result.errors == ["cancelled by erin: stop"]
    issue = next(a for a in result.actions if a.text == "issue the refund")
    assert issue.reason == "not reached: run cancelled by erin"
    with pytest.raises(SopError, match="was cancelled"):
        engine.resume(result.run_id, registry=demo.registry, journal=demo.journal)
    assert demo.journal.verify() == []


def test_a_reject_cut_off_after_spending_the_token_completes_when_tried_again(
    demo: Demo,
) -> None:
    """Spending the token and ending the run are two commits: a reject killed between
    them left the token spent (by a rejection) and the run paused; the next try ends it,
    while a confirmation can no longer use the token."""
    from engine.execution import confirm
    from engine.execution.replay import read_replay

    paused = demo.paused()
    pending = read_replay(demo.journal, paused.run_id).pending_token_hash
    assert pending is not None
    assert demo.journal.use_confirmation(pending, confirm.decision("alice", "rejected", "dup"))
    with pytest.raises(SopError, match="already used"):
        engine.resume(
            paused.run_id,
            confirm=paused.pending["token"],  # type: ignore[index]
            registry=demo.registry,
            journal=demo.journal,
        )
    rejected = engine.reject(paused.run_id, reason="dup", by="alice", journal=demo.journal)
    assert rejected.status is RunStatus.REJECTED and demo.refunds == []
    assert demo.journal.verify() == []
