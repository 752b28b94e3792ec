"""The Python API as the README documents it: engine.load / plan / run / resume.

``EXAMPLE`` is read from the README itself, so the documented example cannot drift;
the first test runs it as a script in a fresh interpreter and checks what it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import engine

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_example() -> str:
    """The python block between the api-example markers of the README."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- api-example:start -->", 1)[1].split("<!-- api-example:end -->", 1)[0]
    return block.strip().removeprefix("```python").removesuffix("```").lstrip("\n")


EXAMPLE = _readme_example()

EXPECTED = """\
plan ok: True | skipped: ['send a receipt']
succeeded {'refunded': 2500}
paused Refund amount exceeds $100. Please confirm.
succeeded {'refunded': 15000}
refused: ['amount: 0 is not > 0 (must be positive)']
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOP_")}
    script = cwd / "example.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_readme_example_runs_as_documented(tmp_path: Path) -> None:
    proc = _python(EXAMPLE, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED
    assert not (tmp_path / ".sop").exists()  # the example's journal is where it said


def test_plan_stays_callable_whatever_was_imported_first(tmp_path: Path) -> None:
    """Importing every submodule first must not shadow the package's functions."""
    code = textwrap.dedent(
        """
        import engine.execution.runner
        import engine.binding.planner
        import engine.language.catalog
        import engine.language.parser
        import engine
        from engine.binding.planner import Plan, plan
        text = "# T\\n\\n## Overview\\n\\nx\\n\\n## Steps\\n\\n### 1. A\\n\\n"
        text += "**Actions**:\\n- MAY wave\\n"
        sop = engine.parse(text)
        made = engine.plan(sop, {}, registry=engine.Registry())
        assert isinstance(made, engine.Plan) and isinstance(made, Plan) and made.ok
        assert plan is engine.plan and engine.run is engine.execution.runner.run
        assert engine.load is engine.language.catalog.load
        assert engine.parse is engine.language.parser.parse
        print("ok")
        """
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"


def test_public_names_resolve() -> None:
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert callable(engine.plan) and callable(engine.run) and callable(engine.resume)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def test_parse_never_raises_and_reports_diagnostics() -> None:
    sop = engine.parse(b"\xff\xfe not utf-8")
    assert isinstance(sop, engine.Sop)
    assert sop.diagnostics and sop.diagnostics[0].severity is engine.Severity.ERROR


def test_load_unknown_name_is_a_usage_error() -> None:
    with pytest.raises(engine.UsageError, match="unknown SOP 'no-such-sop'"):
        engine.load("no-such-sop")


def test_run_refuses_an_unbound_must_before_any_side_effect(tmp_path: Path) -> None:
    from engine.storage.journal import Journal

    sop = engine.parse(
        "# T\n\n## Overview\n\nx\n\n## Steps\n\n### 1. A\n\n**Actions**:\n- MUST do the thing\n",
        path=str(tmp_path / "t.sop.md"),
    )
    journal = Journal(tmp_path / "j.db")
    with pytest.raises(engine.PlanRefused, match="do the thing"):
        engine.run(sop, {}, registry=engine.Registry(), journal=journal)
    assert journal.runs() == []


def test_resume_with_a_wrong_token_is_refused(tmp_path: Path) -> None:
    from engine.storage.journal import Journal

    registry = engine.Registry()

    @registry.action("ask first")
    def ask(ctx: object) -> None:
        if not getattr(ctx, "confirmed", False):
            raise engine.ConfirmationRequired("sure?", operation={"x": 1})

    sop = engine.parse(
        "# T\n\n## Overview\n\nx\n\n## Steps\n\n### 1. A\n\n**Actions**:\n- MUST ask first\n",
        path=str(tmp_path / "t.sop.md"),
    )
    (tmp_path / "t.sop.md").write_text(sop.text, encoding="utf-8")
    journal = Journal(tmp_path / "j.db")
    paused = engine.run(sop, {}, registry=registry, journal=journal)
    assert paused.status.value == "paused"
    with pytest.raises(engine.SopError, match="does not match"):
        engine.resume(paused.run_id, confirm="sopc_wrong", registry=registry, journal=journal)
    done = engine.resume(
        paused.run_id, confirm=paused.pending["token"], registry=registry, journal=journal
    )
    assert done.status.value == "succeeded"
