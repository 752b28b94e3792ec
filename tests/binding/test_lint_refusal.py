"""An SOP with lint errors never runs (issue 9, defect 6).

``sop run`` / ``sop plan`` / ``sop test`` and ``engine.run`` / ``engine.plan`` share one
check (engine.language.lint.refuse_errors, called by engine.binding.planner.plan): an empty file, a
binary file, a file over the size limit, a ``## Step`` typo that would drop its MUST,
and an SOP without a single action are refused with one line per error, exit 1, no
handler run and no run in the journal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.binding.registry import Registry
from engine.errors import LintRefused
from engine.language.lint import lint
from engine.language.parser import MAX_BYTES, parse
from tests.support.cli import pythonpath, sop_cli

HEAD = "# Typo Demo\n\n## Overview\n\nLogs, then charges.\n\n"
LOG_STEP = "## Steps\n\n### 1. Log\n\n**Actions**:\n- MUST log the request\n\n"
TYPO = HEAD + LOG_STEP + "## Step\n\n### 2. Charge\n\n**Actions**:\n- MUST charge the card\n"
TYPO_LINE = 14  # "## Step"
NO_ACTIONS = HEAD + "## Steps\n\n### 1. Think\n\n**Purpose**: Consider the request.\n"
EXAMPLE = "\n## Examples\n\n### Example 1: Log\n\n```yaml\nExpected Output:\n  status: x\n```\n"

HANDLERS = """\
import os
from pathlib import Path

from engine import action


@action("log the request")
def log(ctx):
    Path(os.environ["EFFECTS"]).write_text("a handler ran")


@action("charge the card")
def charge(ctx):
    Path(os.environ["EFFECTS"]).write_text("a handler ran")
"""

FILES: dict[str, tuple[bytes, list[str]]] = {
    "empty": (b"", ["empty.sop.md:1: SOP004 file is empty"]),
    "binary": (b"# Bin\n\x00\x01\x02", ["binary.sop.md:2: SOP001 file contains NUL bytes"]),
    "huge": (
        b"# Big\n\n" + b"- MUST do a thing\n" * (MAX_BYTES // 18 + 1),
        ["huge.sop.md:1: SOP003 file is"],
    ),
    "typo": (TYPO.encode(), [f"typo.sop.md:{TYPO_LINE}: SOP106 section '## Step' holds"]),
    "no-actions": (NO_ACTIONS.encode(), ["no-actions.sop.md:9: SOP107 no step has an action"]),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    for name, (data, _) in FILES.items():
        (tmp_path / "sops" / f"{name}.sop.md").write_bytes(data)
    (tmp_path / "typo_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("command", ["run", "plan"])
def test_cli_refuses_an_sop_with_lint_errors(project: Path, name: str, command: str) -> None:
    effects = project / "effects.txt"
    done = sop_cli(
        command,
        f"sops/{name}.sop.md",
        "--handlers",
        "typo_handlers",
        "--journal",
        str(project / "journal.db"),
        cwd=project,
        env={"PYTHONPATH": pythonpath(project), "EFFECTS": str(effects)},
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"sop: error: refusing to run {name}: "), lines
    assert lines[0].endswith("lint error(s) (nothing ran):")
    for expected in FILES[name][1]:
        assert any(line.strip().startswith(f"sops/{expected}") for line in lines[1:]), lines
    count = int(lines[0].rsplit(": ", 1)[1].split()[0])
    assert count == len(lines) - 1 >= len(FILES[name][1])  # one line per error
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not effects.exists()  # no handler ran
    assert not (project / "journal.db").exists() or _runs(project / "journal.db") == []


def _runs(path: Path) -> list[object]:
    from engine.storage.journal import Journal

    with Journal(path) as journal:
        return list(journal.runs())


def test_sop_test_reports_an_sop_with_lint_errors_as_failed(project: Path) -> None:
    (project / "sops" / "typo.sop.md").write_text(TYPO + EXAMPLE, encoding="utf-8")
    effects = project / "effects.txt"
    done = sop_cli(
        "test",
        "sops/typo.sop.md",
        "--handlers",
        "typo_handlers",
        "--journal",
        str(project / "journal.db"),
        cwd=project,
        env={"PYTHONPATH": pythonpath(project), "EFFECTS": str(effects)},
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "FAIL typo example 1: Log" in done.stdout
    assert "could not run: refusing to run typo: 1 lint error(s) (nothing ran)" in done.stdout
    assert f"typo.sop.md:{TYPO_LINE}: SOP106" in done.stdout
    assert not effects.exists()


def test_python_api_refuses_too(tmp_path: Path) -> None:
    ran: list[str] = []
    registry = Registry()

    @registry.action("log the request")
    def log(ctx: object) -> None:
        ran.append("log")

    @registry.action("charge the card")
    def charge(ctx: object) -> None:
        ran.append("charge")

    path = tmp_path / "typo.sop.md"
    path.write_text(TYPO, encoding="utf-8")
    sop = parse(path.read_bytes(), path=str(path))
    with pytest.raises(LintRefused) as refused:
        engine.plan(sop, {}, registry=registry)
    assert refused.value.lines == [
        f"{path}:{TYPO_LINE}: SOP106 section '## Step' holds step heading '### 2.' that never "
        "run: only the section '## Steps' is run; rename it '## Steps' or move its steps there"
    ]
    from engine.storage.journal import Journal

    with Journal(tmp_path / "j.db") as journal, pytest.raises(LintRefused):
        engine.run(sop, {}, registry=registry, journal=journal)
    assert ran == []
    fixed = parse(TYPO.replace("## Step\n", ""), path=str(path))
    with Journal(tmp_path / "j.db") as journal:
        result = engine.run(fixed, {}, registry=registry, journal=journal)
    assert result.status.value == "succeeded" and ran == ["log", "charge"]


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("Step", "### 2. Charge\n\n**Actions**:\n- MUST charge the card\n"),
        ("Stpes", "- MUST charge the card\n"),
        ("steps:", "- MUST charge the card\n"),
        ("Later", "### 2) Charge\n\n- MUST charge the card\n"),
    ],
)
def test_steps_outside_steps_are_a_lint_error(title: str, body: str) -> None:
    sop = parse(HEAD + LOG_STEP + f"## {title}\n\n{body}", path="x.sop.md")
    found = [d for d in lint(sop) if d.code == "SOP106"]
    assert len(found) == 1, lint(sop)
    assert found[0].line == TYPO_LINE and found[0].severity.value == "error"
    assert f"section '## {title}'" in found[0].message and "'## Steps'" in found[0].message


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("Troubleshooting", "- You MUST check the logs first\n"),  # Agent SOP format
        ("Next Steps", "- SHOULD review the summary\n"),
        ("Notes", "Steps are numbered.\n\n#### 3. Not a step\n"),
    ],
)
def test_keyword_lines_in_other_sections_stay_allowed(title: str, body: str) -> None:
    sop = parse(HEAD + LOG_STEP + f"## {title}\n\n{body}", path="x.sop.md")
    assert [d for d in lint(sop) if d.code in ("SOP106", "SOP107")] == []


def test_shipped_sops_and_fixtures_have_no_lint_errors() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("sops/*.sop.md"), *root.glob("tests/fixtures/**/*.sop.md")]:
        sop = parse(path.read_bytes(), path=str(path))
        assert [d for d in lint(sop) if d.severity.value == "error"] == [], path
