"""Every Error Recovery phrase has an effect: notify and escalate go through the notifier
service (journaled first), ``block transaction`` makes the run ``blocked``, ``do not
retry`` stops retries. Real parser, plan, SQLite journal and a real ``sop`` subprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.binding.registry import Registry
from engine.errors import OutcomeUnknown, SopError, SopFailure
from engine.execution import recovery_effects
from engine.execution.notifier import SERVICE, Notice
from engine.execution.runner import ActionStatus, RunResult, RunStatus, resume, run
from engine.language.parser import parse
from engine.language.recovery import interpret
from engine.storage.journal import Journal
from tests.support.cli import pythonpath, sop_cli

CARD = "4242 4242 4242 4242"

SOP_TEXT = """\
# Recovery Demo

## Overview

A procedure whose recovery table says what happens after a failure.

## Steps

### 1. Charge

**Actions**:
- MUST charge the card

### 2. Finish

**Actions**:
- MUST write the receipt

## Error Recovery

| Error Type | Recovery Procedure |
|------------|-------------------|
| Card declined | Notify user, do not retry |
| Fraud detected | Block transaction, escalate to supervisor |
| Network timeout | Retry up to 2 times |
| Lost answer | Notify on-call |
"""

HANDLERS = """
from engine import SopFailure, action

@action("charge the card")
def charge(ctx):
    raise SopFailure("fraud detected", "Radar blocked the charge")

@action("write the receipt")
def receipt(ctx):
    return None
"""


class Collecting:
    """A pack's notifier: keeps what it was given."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def deliver(self, notice: Notice) -> None:
        self.notices.append(notice)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOP_RETRY_BASE_SECONDS", "0")


def _run(
    tmp_path: Path, failure: BaseException, services: dict[str, Any] | None = None
) -> tuple[RunResult, Journal, list[int]]:
    registry = Registry()
    attempts: list[int] = []

    @registry.action("charge the card")
    def charge(ctx: Any) -> None:
        attempts.append(ctx.attempt)
        raise failure

    @registry.action("write the receipt")
    def receipt(ctx: Any) -> None:
        return None

    journal = Journal(tmp_path / "journal.db")
    sop = parse(SOP_TEXT, path=str(tmp_path / "recovery-demo.sop.md"))
    result = run(sop, {}, registry=registry, journal=journal, services=services)
    return result, journal, attempts


def _events(journal: Journal, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in journal.events(run_id) if e.type == kind]


def test_notify_user_is_journaled_redacted_and_printed_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failure = SopFailure("card declined", f"card {CARD} was declined", retryable=True)
    result, journal, attempts = _run(tmp_path, failure)
    assert result.status is RunStatus.FAILED
    assert attempts == [1]  # "do not retry" beats the handler's retryable=True
    (notified,) = _events(journal, result.run_id, "notified")
    assert notified["to"] == "user" and notified["condition"] == "card declined"
    assert CARD not in notified["message"] and "declined" in notified["message"]
    err = capsys.readouterr().err
    assert "sop: notified user: card declined" in err and CARD not in err
    assert _events(journal, result.run_id, "escalated") == []


def test_notify_someone_else_is_named_in_the_notice(tmp_path: Path) -> None:
    pack = Collecting()
    _run(tmp_path, SopFailure("lost answer", "no reply"), {SERVICE: pack})
    assert [(n.kind, n.to) for n in pack.notices] == [("notify", "on-call")]
    assert interpret("Notify on-call")["unknown_phrases"] == ()


def test_block_transaction_blocks_the_run_and_escalates(tmp_path: Path) -> None:
    pack = Collecting()
    result, journal, attempts = _run(
        tmp_path, SopFailure("fraud detected", "Radar blocked the charge"), {SERVICE: pack}
    )
    assert attempts == [1]  # a failure with no retry row is not retried
    assert result.status is RunStatus.BLOCKED
    assert result.errors[0].startswith("blocked: fraud detected (line ")
    assert "Block transaction, escalate to supervisor" in result.errors[0]
    assert result.to_dict()["status"] == "blocked"  # and the result schema accepts it
    statuses = [a.status for a in result.actions]
    assert statuses == [ActionStatus.FAILED, ActionStatus.SKIPPED]  # the receipt: not reached
    (escalated,) = _events(journal, result.run_id, "escalated")
    assert escalated["to"] == "supervisor"
    (notice,) = pack.notices
    assert notice.kind == "escalate" and notice.key == escalated["key"]
    assert journal.run(result.run_id).status == "blocked"  # type: ignore[union-attr]
    with pytest.raises(SopError, match="already blocked; nothing to resume"):
        resume(result.run_id, journal=journal)


def test_retry_phrases_still_retry_and_unknown_outcomes_notify_nobody(tmp_path: Path) -> None:
    result, _, attempts = _run(tmp_path / "a", SopFailure("network timeout", "timed out"))
    assert result.status is RunStatus.FAILED and attempts == [1, 2, 3]
    pack = Collecting()
    unknown, journal, _ = _run(
        tmp_path / "b", OutcomeUnknown("card declined", "no answer"), {SERVICE: pack}
    )
    assert unknown.status is RunStatus.UNKNOWN
    assert pack.notices == [] and _events(journal, unknown.run_id, "notified") == []


def test_a_notice_is_journaled_once_per_key_and_a_failing_notifier_is_a_warning(
    tmp_path: Path,
) -> None:
    class Down:
        def deliver(self, notice: Notice) -> None:
            raise ConnectionError("mail server down")

    result, journal, _ = _run(tmp_path, SopFailure("card declined", "declined"), {SERVICE: Down()})
    assert result.status is RunStatus.FAILED
    assert any("could not notify user: ConnectionError" in w for w in result.warnings)
    sop = parse(SOP_TEXT, path="recovery-demo.sop.md")
    effects = recovery_effects.for_failure(
        SopFailure("card declined", "declined"),
        sop,
        sop.steps[0],
        run_id=result.run_id,
        action_id=result.actions[0].id,
        message="declined",
        params={},
    )
    again = Collecting()
    # the line failing again after a crash: same key, delivered again, journaled once
    assert recovery_effects.apply(effects, journal, {SERVICE: again}) == []
    assert len(again.notices) == 1
    assert len(_events(journal, result.run_id, "notified")) == 1


def test_cli_blocked_run_exits_1_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "recovery-demo.sop.md").write_text(SOP_TEXT, encoding="utf-8")
    (tmp_path / "demo_handlers.py").write_text(HANDLERS, encoding="utf-8")
    proc = sop_cli(
        "run",
        "recovery-demo",
        "--handlers",
        "demo_handlers",
        "--journal",
        str(tmp_path / "j.db"),
        "--json",
        cwd=tmp_path,
        env={"PYTHONPATH": pythonpath(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr
    assert '"status": "blocked"' in proc.stdout
    assert "blocked: fraud detected" in proc.stdout
    assert "sop: escalated to supervisor: fraud detected: " in proc.stderr
    assert "Traceback" not in proc.stderr
