"""Who performs a line: the **Performer** metadata, --performer, plan and coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.binding.coverage import coverage
from engine.binding.planner import plan
from engine.errors import PlanRefused
from engine.execution.runner import run
from engine.language.parser import parse
from engine.model import Sop
from engine.storage.journal import Journal
from tests.support.guided import CODE_ONLY, MIXED, registry, write


def _sop(tmp_path: Path, text: str = MIXED, name: str = "release-runbook") -> Sop:
    path = write(tmp_path, text, name)
    return parse(path.read_bytes(), path=str(path))


def test_sop_wide_and_step_performers_are_read(tmp_path: Path) -> None:
    sop = _sop(tmp_path)
    assert sop.performer == "agent"
    assert [s.performer for s in sop.steps] == [None, "person", None]
    assert not sop.diagnostics


def test_an_unknown_performer_is_an_error_naming_its_line(tmp_path: Path) -> None:
    sop = _sop(tmp_path, MIXED.replace("**Performer**: person", "**Performer**: robot"))
    [diag] = [d for d in sop.diagnostics if d.code == "SOP060"]
    assert diag.line == 33 and "robot" in diag.message and diag.severity.value == "error"


def test_plan_shows_each_lines_performer(tmp_path: Path) -> None:
    sop = _sop(tmp_path)
    planned = plan(sop, {"mode": "quick"}, registry=registry(tmp_path / "fx"))
    who = {b.action.line: (b.status, b.performer) for b in planned.bindings}
    assert who[21] == ("bound", "code")  # bound lines run as code, also in an agent SOP
    assert who[22] == ("performer", "agent")
    assert who[36] == ("performer", "person")  # the step's own word
    assert who[40] == ("off_path", "person")
    assert planned.ok and len(planned.performer_lines) == 5
    data = planned.to_dict()  # valid against plan.schema.json
    assert {b["performer"] for b in data["bindings"]} == {"code", "agent", "person"}


def test_performer_option_sets_it_for_files_that_say_nothing(tmp_path: Path) -> None:
    sop = _sop(tmp_path, CODE_ONLY, "code-only")
    reg = registry(tmp_path / "fx")
    assert not plan(sop, {}, registry=reg).ok
    planned = plan(sop, {}, registry=reg, performer="person")
    assert planned.ok
    assert [b.performer for b in planned.bindings] == ["code", "person"]


def test_the_sops_own_word_wins_over_the_option(tmp_path: Path) -> None:
    text = CODE_ONLY.replace("**Version**: 1.0.0", "**Version**: 1.0.0\n**Performer**: code")
    sop = _sop(tmp_path, text, "code-only")
    planned = plan(sop, {}, registry=registry(tmp_path / "fx"), performer="agent")
    assert not planned.ok
    assert [b.action.line for b in planned.unbound] == [16]


def test_a_code_sop_with_an_unbound_must_refuses_before_anything_happens(tmp_path: Path) -> None:
    sop = _sop(tmp_path, CODE_ONLY, "code-only")
    effects = tmp_path / "fx"
    with Journal(tmp_path / "j.db") as journal, pytest.raises(PlanRefused) as refused:
        run(sop, {}, registry=registry(effects), journal=journal)
    assert refused.value.lines == [f"{sop.path}:15: MUST do something nobody wrote"]
    assert not effects.exists()
    with Journal(tmp_path / "j.db") as journal:
        assert journal.runs() == []


def test_coverage_counts_code_performer_and_unbound_lines(tmp_path: Path) -> None:
    reg = registry(tmp_path / "fx")
    report = coverage([_sop(tmp_path), _sop(tmp_path, CODE_ONLY, "code-only")], reg, strict=True)
    mixed, code = report.sops
    assert mixed.performers() == {"code": 3, "performer": 6, "unbound": 0}
    assert code.performers() == {"code": 1, "performer": 0, "unbound": 1}
    assert not mixed.failures(strict=True)  # a performer's line is no gap in the code
    assert [f.action.line for f in code.failures(strict=True)] == [15]
    data = report.to_dict()  # valid against coverage.schema.json
    lines = {line["line"]: line for line in data["sops"][0]["lines"]}
    assert (lines[22]["status"], lines[22]["performer"]) == ("performer", "agent")
    assert (lines[21]["status"], lines[21]["performer"]) == ("bound", "code")
    text = report.to_text()
    assert "code-bound 3  performer 6  unbound 0" in text
    assert f"agent {mixed.sop.path}:22: MUST write the changelog" in text
