"""`--sop-paths A:B` on every command: after ./sops, before SOP_PATH, `~` expanded,
missing folders one warning line each and skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import sop_cli


def _sop(folder: Path, name: str, title: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sop.md"
    path.write_text(
        f"# {title}\n\n## Overview\n\nx\n\n## Steps\n\n### 1. Only\n\n**Actions**:\n"
        "- MUST do the thing\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path


def test_sop_paths_are_searched_before_sop_path_and_after_sops(project: Path) -> None:
    cli, env = project / "cli", project / "env"
    _sop(cli, "shared", "From the command line")
    _sop(env, "shared", "From SOP_PATH")
    _sop(env, "env-only", "Only in SOP_PATH")
    _sop(cli, "local", "Shadowed by ./sops")
    _sop(project / "work" / "sops", "local", "From ./sops")
    proc = sop_cli(
        "list", "--sop-paths", str(cli), cwd=project / "work", env={"SOP_PATH": str(env)}
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "From the command line" in proc.stdout and "From SOP_PATH" not in proc.stdout
    assert "Only in SOP_PATH" in proc.stdout
    assert "From ./sops" in proc.stdout and "Shadowed by ./sops" not in proc.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_home_is_expanded_and_missing_folders_are_warned_and_skipped(
    project: Path, where: str
) -> None:
    home = project / "home"
    _sop(home / "my-sops", "mine", "Mine")
    paths = os.pathsep.join(["~/my-sops", str(project / "nowhere"), "~/gone"])
    args = ["--sop-paths", paths]
    command = [*args, "show", "mine"] if where == "before" else ["show", "mine", *args]
    proc = sop_cli(*command, cwd=project / "work", env={"HOME": str(home)}, drop=["SOP_PATH"])
    assert proc.returncode == 0, proc.stderr
    assert "Mine  (mine)" in proc.stdout
    warnings = proc.stderr.strip().splitlines()
    assert warnings == [
        f"sop: warning: --sop-paths: no folder '{project / 'nowhere'}', skipped",
        f"sop: warning: --sop-paths: no folder '{home / 'gone'}', skipped",
    ]


def test_sop_paths_reach_commands_that_run_sops(project: Path) -> None:
    """plan/lint/export read through the same catalog: one option, every command."""
    folder = project / "more"
    _sop(folder, "extra", "Extra")
    plan = sop_cli("plan", "extra", "--sop-paths", str(folder), cwd=project / "work")
    assert "do the thing" in plan.stdout and "unknown SOP" not in plan.stderr
    lint = sop_cli("--sop-paths", str(folder), "lint", "extra", cwd=project / "work")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = project / "skills"
    export = sop_cli(
        "export", "skills", str(out), "extra", "--sop-paths", str(folder), cwd=project / "work"
    )
    assert export.returncode == 0 and (out / "extra" / "SKILL.md").is_file(), export.stderr
    without = sop_cli("plan", "extra", cwd=project / "work", drop=["SOP_PATH"])
    assert without.returncode == 2 and "unknown SOP 'extra'" in without.stderr
