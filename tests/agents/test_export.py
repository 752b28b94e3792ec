"""`sop export skills|cursor DIR`: files other agent tools read, checked against their formats.

Agent Skills (agentskills.io specification): a folder per skill with SKILL.md, YAML front
matter ``name`` (1-64 of a-z 0-9 and single hyphens, no hyphen at either end, equal to the
folder's name) and ``description`` (1-1024 characters). Cursor: plain markdown commands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from engine.agents.export import skill_name_problem
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SPEC_NAME = re.compile(r"(?!-)(?!.*--)[a-z0-9-]{1,64}(?<!-)")  # the spec's rules, written apart


def _front_matter(text: str) -> tuple[dict[str, object], str]:
    assert text.startswith("---\n")
    header, _, body = text[4:].partition("\n---\n")
    loaded = yaml.safe_load(header)
    assert isinstance(loaded, dict)
    return loaded, body


@pytest.fixture
def project(tmp_path: Path) -> Path:
    sops = tmp_path / "sops"
    sops.mkdir()
    (sops / "greet-user.sop.md").write_text(
        "---\nOwner: team\n---\n# Greet User SOP\n\n**Version**: 2.1.0\n\n## Overview\n\n"
        "Greets a user by name. Use it when someone arrives.\n\n## Parameters\n\n"
        "- **who** (string, required): whom to greet\n\n## Steps\n\n### 1. Greet\n\n"
        "**Actions**:\n- MUST say hello to the user\n",
        encoding="utf-8",
    )
    return tmp_path


def test_skills_export_writes_a_valid_skill_per_sop_and_creates_folders(project: Path) -> None:
    out = project / "deep" / "skills"
    proc = sop_cli("export", "skills", str(out), cwd=project)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "greet-user" in names and "payment-processing" in names  # ./sops and built-ins
    for name in names:
        meta, body = _front_matter((out / name / "SKILL.md").read_text(encoding="utf-8"))
        assert meta["name"] == name and SPEC_NAME.fullmatch(name), name
        description = meta["description"]
        assert isinstance(description, str) and 0 < len(description) <= 1024
        assert f"sop run {name}" in body and f"wrote {out / name / 'SKILL.md'}" in proc.stdout
    meta, body = _front_matter((out / "greet-user" / "SKILL.md").read_text(encoding="utf-8"))
    assert meta["description"] == "Greets a user by name. Use it when someone arrives."
    assert "sop run greet-user -p who=..." in body
    assert "# Greet User SOP" in body and "- MUST say hello to the user" in body
    assert "Owner: team" not in body  # the SOP's own front matter is not a second header


def test_export_is_idempotent_and_says_what_it_left_alone(project: Path) -> None:
    out = project / "skills"
    assert sop_cli("export", "skills", str(out), "greet-user", cwd=project).returncode == 0
    skill = out / "greet-user" / "SKILL.md"
    first = skill.read_bytes()
    again = sop_cli("export", "skills", str(out), "greet-user", cwd=project)
    assert again.returncode == 0, again.stderr
    assert f"unchanged {skill}" in again.stdout and "wrote" not in again.stdout
    assert skill.read_bytes() == first and sorted(out.iterdir()) == [out / "greet-user"]


def test_cursor_export_writes_plain_markdown_commands(project: Path) -> None:
    out = project / ".cursor" / "commands"
    proc = sop_cli("export", "cursor", str(out), "greet-user", "refund-handling", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["greet-user.md", "refund-handling.md"]
    text = (out / "greet-user.md").read_text(encoding="utf-8")
    assert not text.startswith("---")  # Cursor reads no front matter
    assert "sop run greet-user" in text and "- MUST say hello to the user" in text
    assert f"wrote {out / 'greet-user.md'}" in proc.stdout


def test_a_name_the_skill_rules_refuse_is_one_line_and_writes_nothing(project: Path) -> None:
    (project / "sops" / "Greet_Twice.sop.md").write_text(
        "# Twice\n\n## Steps\n\n### 1. A\n\n**Actions**:\n- MUST greet twice\n", encoding="utf-8"
    )
    out = project / "skills"
    proc = sop_cli("export", "skills", str(out), cwd=project)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Greet_Twice.sop.md" in proc.stderr and "not a valid skill name" in proc.stderr
    assert not out.exists()


def test_an_unknown_sop_name_writes_nothing(project: Path) -> None:
    out = project / "skills"
    proc = sop_cli("export", "cursor", str(out), "greet-user", "no-such-sop", cwd=project)
    assert proc.returncode == 2 and "unknown SOP 'no-such-sop'" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("pdf-processing", True),
        ("a", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("PDF-Processing", False),
        ("-pdf", False),
        ("pdf-", False),
        ("pdf--processing", False),
        ("pdf_processing", False),
        ("pdf processing", False),
    ],
)
def test_skill_names_follow_the_agent_skills_rules(name: str, valid: bool) -> None:
    assert (skill_name_problem(name) is None) is valid
    assert bool(SPEC_NAME.fullmatch(name)) is valid
