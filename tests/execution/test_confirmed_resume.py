"""A run whose pending confirmation was already spent by a person goes on without the token.

That is how a worker continues a submitted run confirmed elsewhere (engine.distributed),
and how a run killed between its confirmation and its next action is finished by a plain
``sop resume``; a rejection spent the same way never lets it go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import SopError
from engine.execution import confirm as confirmation
from engine.execution.replay import read_replay
from engine.execution.runner import RunStatus
from engine.storage.journal import Journal

SOP = """\
# Gate Demo SOP

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


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    sop = tmp_path / "gate-demo.sop.md"
    sop.write_text(SOP, encoding="utf-8")
    registry = engine.Registry()
    refunds: list[int] = []

    @registry.action("require confirmation for refunds > ${threshold:d}")
    def gate(ctx: Any, threshold: int) -> None:
        if ctx.params["amount"] > threshold * 100 and not ctx.confirmed:
            raise engine.ConfirmationRequired("confirm", operation={"amount": 1})

    @registry.action("issue the refund")
    def issue(ctx: Any) -> None:
        refunds.append(ctx.params["amount"])

    journal = Journal(tmp_path / "journal.db")
    paused = engine.run(str(sop), {"amount": 15000}, registry=registry, journal=journal)
    assert paused.status is RunStatus.PAUSED
    yield paused, registry, journal, refunds
    journal.close()


def _spend(journal: Journal, run_id: str, decision: str) -> None:
    """What a confirming process journals before it dies (or hands the run to a worker)."""
    replay = read_replay(journal, run_id)
    assert replay.pending_token_hash is not None
    journal.acquire_lease(run_id)
    journal.use_confirmation(replay.pending_token_hash, confirmation.decision("alice", decision))
    journal.release_lease(run_id)


def test_a_spent_confirmation_lets_resume_go_on_once(setup: Any) -> None:
    paused, registry, journal, refunds = setup
    _spend(journal, paused.run_id, "confirmed")
    done = engine.resume(paused.run_id, registry=registry, journal=journal)
    assert done.status is RunStatus.SUCCEEDED, done.errors
    assert refunds == [15000]
    resumed = [e.data for e in journal.events(paused.run_id) if e.type == "run_resumed"]
    assert resumed[-1]["confirmed"] is True
    with pytest.raises(SopError, match="already succeeded"):
        engine.resume(paused.run_id, registry=registry, journal=journal)
    assert refunds == [15000] and journal.verify() == []


def test_a_spent_rejection_does_not(setup: Any) -> None:
    paused, registry, journal, refunds = setup
    _spend(journal, paused.run_id, "rejected")
    with pytest.raises(SopError, match="waiting for confirmation"):
        engine.resume(paused.run_id, registry=registry, journal=journal)
    assert refunds == []


def test_an_unspent_one_still_needs_the_token(setup: Any) -> None:
    paused, registry, journal, refunds = setup
    with pytest.raises(SopError, match="waiting for confirmation"):
        engine.resume(paused.run_id, registry=registry, journal=journal)
    assert refunds == []
