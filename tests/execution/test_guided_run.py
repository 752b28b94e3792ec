"""Guided runs through the Python API: real parser, planner, SQLite journal, handlers that
append to a file (the outside world)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SopError
from engine.execution.guided import report
from engine.execution.result import ActionStatus, RunStatus
from engine.execution.runner import resume, run
from engine.language.parser import parse
from engine.model import Sop
from engine.storage.journal import Journal
from tests.support.guided import MIXED, registry, write


@pytest.fixture
def sop(tmp_path: Path) -> Sop:
    path = write(tmp_path)
    return parse(path.read_bytes(), path=str(path))


def _done(tasks: list[dict[str, object]], note: str = "ok") -> list[dict[str, object]]:
    return [{"id": t["id"], "outcome": "done", "note": note} for t in tasks]


def test_the_run_waits_with_the_steps_tasks_after_its_bound_lines(sop: Sop, tmp_path: Path) -> None:
    effects = tmp_path / "fx"
    with Journal(tmp_path / "j.db") as journal:
        result = run(sop, {"mode": "quick"}, registry=registry(effects), journal=journal)
        assert result.status is RunStatus.WAITING
        assert [t["line"] for t in result.tasks] == [22, 23, 24, 27]
        first = result.tasks[0]
        assert first == {
            "id": "step1:action:L22",
            "file": sop.path,
            "line": 22,
            "level": "MUST",
            "kind": "action",
            "text": "write the changelog",
            "step": 1,
            "step_title": "Prepare",
            "prose": "Get the tree ready for the release.",
            "performer": "agent",
            "required": True,
        }
        assert result.to_dict()["status"] == "waiting"  # valid against the schema
        assert journal.run(result.run_id).status == "waiting"  # type: ignore[union-attr]
    assert effects.read_text() == "start\n"  # the bound line before the tasks ran; no more


def test_reports_settle_a_step_then_the_run_goes_on(sop: Sop, tmp_path: Path) -> None:
    effects = tmp_path / "fx"
    reg = registry(effects)
    with Journal(tmp_path / "j.db") as journal:
        waiting = run(sop, {"mode": "quick"}, registry=reg, journal=journal)
        rid = waiting.run_id
        one = [{"id": "step1:action:L22", "outcome": "done", "note": "CHANGELOG.md#v1"}]
        still = report(rid, one, by="bot", registry=reg, journal=journal)
        assert still.status is RunStatus.WAITING  # the step's other tasks are open
        assert [t["line"] for t in still.tasks] == [23, 24, 27]
        rest = [
            {"id": "L23", "outcome": "skipped", "note": "no docs change"},
            {"id": "24", "outcome": "done", "note": ""},  # MUST NOT: acknowledged
            {"id": f"{sop.path}:27", "outcome": "done", "note": "checked"},
        ]
        step2 = report(rid, rest, by="bot", registry=reg, journal=journal)
        assert step2.status is RunStatus.WAITING
        assert [(t["line"], t["performer"]) for t in step2.tasks] == [(36, "person")]
        final = report(rid, _done(step2.tasks, "v1.0.0"), by="ann", registry=reg, journal=journal)
        assert final.status is RunStatus.SUCCEEDED
        fate = {a.line: (a.status, a.reason) for a in final.actions}
        assert fate[22] == (ActionStatus.PASSED, "done by bot: CHANGELOG.md#v1")
        assert fate[23] == (ActionStatus.SKIPPED, "skipped by bot: no docs change")
        assert fate[36] == (ActionStatus.PASSED, "done by ann: v1.0.0")
        assert fate[40][0] is ActionStatus.SKIPPED  # not selected: skipped with the condition
        assert fate[40][1] == "branch 'For Full' not selected (mode=quick)"
    assert effects.read_text() == "start\ntag\nend\n"  # each side effect exactly once


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"id": "L22", "outcome": "skipped", "note": "later"},
            ":22: MUST write the changelog: a MUST line cannot be",
        ),
        (
            {"id": "L27", "outcome": "skipped", "note": "no"},
            ":27: MUST Changelog mentions every merged change: a MUST line",
        ),
        (
            {"id": "L23", "outcome": "skipped", "note": ""},
            ":23: SHOULD update the docs: a skipped task needs a reason",
        ),
        (
            {"id": "L23", "outcome": "maybe", "note": ""},
            ":23: SHOULD update the docs: outcome 'maybe' is not one of",
        ),
        ({"id": "L36", "outcome": "done", "note": ""}, ":36: MUST tag the release: not an open"),
        ({"id": "L99", "outcome": "done", "note": ""}, "no open task 'L99'"),
    ],
)
def test_a_refused_report_names_the_line_and_records_nothing(
    sop: Sop, tmp_path: Path, item: dict[str, str], message: str
) -> None:
    reg = registry(tmp_path / "fx")
    with Journal(tmp_path / "j.db") as journal:
        rid = run(sop, {"mode": "quick"}, registry=reg, journal=journal).run_id
        before = len(journal.events(rid))
        ok = {"id": "L24", "outcome": "done", "note": ""}
        with pytest.raises(SopError) as refused:
            report(rid, [ok, item], registry=reg, journal=journal)
        assert message in str(refused.value)
        assert "\n" not in str(refused.value)
        assert len(journal.events(rid)) == before  # not even the valid report


def test_a_failed_task_applies_the_sops_error_handling(sop: Sop, tmp_path: Path) -> None:
    reg = registry(tmp_path / "fx")
    with Journal(tmp_path / "j.db") as journal:
        rid = run(sop, {"mode": "quick"}, registry=reg, journal=journal).run_id
        failed = [{"id": "L22", "outcome": "failed", "note": "changelog missing"}]
        result = report(rid, failed, registry=reg, journal=journal)
    assert result.status is RunStatus.FAILED
    assert result.errors == ["Changelog is required"]
    fate = {a.line: a.status for a in result.actions}
    assert fate[22] is ActionStatus.FAILED
    assert fate[45] is ActionStatus.SKIPPED  # not reached


def test_a_retryable_failure_opens_the_task_again(tmp_path: Path) -> None:
    text = MIXED.replace(
        '- If changelog missing: Return error with "Changelog is required" message',
        "- If build flaked: Retry up to 2 times",
    )
    path = write(tmp_path, text)
    sop = parse(path.read_bytes(), path=str(path))
    reg = registry(tmp_path / "fx")
    with Journal(tmp_path / "j.db") as journal:
        rid = run(sop, {"mode": "quick"}, registry=reg, journal=journal).run_id
        again = report(
            rid,
            [{"id": "L22", "outcome": "failed", "note": "build flaked"}],
            journal=journal,
            registry=reg,
        )
    assert again.status is RunStatus.WAITING
    assert again.tasks[0]["line"] == 22 and again.tasks[0]["failures"] == 1


def test_reports_are_journaled_redacted_and_survive_another_process(
    sop: Sop, tmp_path: Path
) -> None:
    reg = registry(tmp_path / "fx")
    card = "4242424242424242"
    with Journal(tmp_path / "j.db") as journal:
        rid = run(sop, {"mode": "quick"}, registry=reg, journal=journal).run_id
        note = f"paid with {card}"
        report(
            rid,
            [{"id": "L22", "outcome": "done", "note": note}],
            by="eve",
            journal=journal,
            registry=reg,
        )
    with Journal(tmp_path / "j.db") as journal:  # a new connection: only the journal remains
        [event] = [e for e in journal.events(rid) if e.type == "task_reported"]
        assert event.action_id == "step1:action:L22"
        assert event.data["by"] == "eve" and event.data["outcome"] == "done"
        assert card not in event.data["note"] and event.data["at"]
        again = resume(rid, registry=reg, journal=journal)
    assert again.status is RunStatus.WAITING
    assert [t["line"] for t in again.tasks] == [23, 24, 27]  # L22's report stands
    assert card not in str(again.to_dict())


def test_a_failed_task_stops_its_step_before_the_bound_lines_after_it(tmp_path: Path) -> None:
    text = MIXED.replace(
        "- SHOULD update the docs\n", "- SHOULD update the docs\n- MUST record the tag\n"
    )
    path = write(tmp_path, text)
    sop = parse(path.read_bytes(), path=str(path))
    effects = tmp_path / "fx"
    reg = registry(effects)
    with Journal(tmp_path / "j.db") as journal:
        waiting = run(sop, {"mode": "quick"}, registry=reg, journal=journal)
        assert [t["line"] for t in waiting.tasks] == [22, 23, 25, 28]
        reports = [
            {"id": "L22", "outcome": "done", "note": "written"},
            {"id": "L25", "outcome": "failed", "note": "pushed to main by mistake"},
        ]
        result = report(waiting.run_id, reports, registry=reg, journal=journal)
    assert result.status is RunStatus.FAILED
    fate = {a.line: a.status for a in result.actions}
    assert fate[22] is ActionStatus.PASSED and fate[25] is ActionStatus.FAILED
    assert fate[24] is ActionStatus.SKIPPED  # the bound line between them never ran
    assert effects.read_text() == "start\n"
