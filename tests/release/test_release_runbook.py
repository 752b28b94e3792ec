"""The release-runbook SOP and its pack: lint-clean, code binds exactly the code lines,
and the checks run real git and a real test command against a temporary repository."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from engine.binding.normalize import normalize
from handlers.release.performer import PERFORMS, answer
from tests.support.cli import pythonpath, sop_cli

ROOT = Path(__file__).resolve().parents[2]
SOP = ROOT / "sops" / "release-runbook.sop.md"
PASSING = shlex.join([sys.executable, "-c", "print('1 passed')"])
FAILING = shlex.join([sys.executable, "-c", "raise SystemExit('1 failed')"])
IDENTITY = {
    "GIT_AUTHOR_NAME": "Release Bot",
    "GIT_AUTHOR_EMAIL": "bot@example.invalid",
    "GIT_COMMITTER_NAME": "Release Bot",
    "GIT_COMMITTER_EMAIL": "bot@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project released once (v1.0.0) with two commits since."""
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0.0"\n\n[tool.demo]\nversion = "keep"\n',
        encoding="utf-8",
    )
    (repo / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [1.0.0] - 2026-01-01\n\n- First release\n", encoding="utf-8"
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Initial release")
    _git(repo, "tag", "-a", "v1.0.0", "-m", "Release 1.0.0")
    for subject in ("Add a greeting", "Fix the farewell"):
        (repo / "notes.txt").write_text(subject, encoding="utf-8")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", subject)
    return repo


def _run(repo: Path, version: str, tests: str = PASSING) -> tuple[int, dict[str, object], str]:
    work = repo.parent / "work"
    work.mkdir(exist_ok=True)
    proc = sop_cli(
        "run",
        "release-runbook",
        "-p",
        f"repo={repo}",
        "-p",
        f"version={version}",
        "-p",
        f"test_command={tests}",
        "--handlers",
        "handlers.release.as_code",
        "--journal",
        str(work / "journal.db"),
        "--json",
        cwd=work,
        env={"PYTHONPATH": pythonpath(ROOT)},
    )
    result = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, result, proc.stderr


def test_the_runbook_lints_clean_even_strict() -> None:
    proc = sop_cli("lint", "--strict", str(SOP), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_plan_binds_the_code_lines_and_leaves_exactly_the_agent_lines(tmp_path: Path) -> None:
    proc = sop_cli(
        "plan", "release-runbook", "-p", "repo=.", "-p", "version=1.1.0", "--json", cwd=tmp_path
    )
    plan = json.loads(proc.stdout)
    bound = {b["text"]: b["handler"]["name"] for b in plan["bindings"] if b["status"] == "bound"}
    others = {normalize(b["text"]) for b in plan["bindings"] if b["status"] != "bound"}
    assert len(bound) == 8 and all(
        str(h).startswith("handlers.release.checks.") for h in bound.values()
    )
    assert any("tests pass" in text for text in bound) and any("tag" in t for t in bound)
    assert others == {normalize(text) for text in PERFORMS}  # the scripted performer's lines


def test_the_whole_runbook_releases_a_temporary_repository(repo: Path) -> None:
    head_before = _git(repo, "rev-parse", "HEAD")
    code, result, stderr = _run(repo, "1.1.0")
    assert code == 0 and result["status"] == "succeeded", stderr
    assert _git(repo, "cat-file", "-t", "v1.1.0") == "tag"
    assert _git(repo, "rev-parse", "v1.1.0^{commit}") == _git(repo, "rev-parse", "HEAD")
    assert _git(repo, "rev-parse", "HEAD~1") == head_before
    pyproject = (repo / "pyproject.toml").read_text(encoding="utf-8")
    assert 'version = "1.1.0"' in pyproject and 'version = "keep"' in pyproject
    changelog = (repo / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.index("## [1.1.0]") < changelog.index("## [1.0.0]")
    assert "### Added\n\n- Add a greeting" in changelog
    assert "### Fixed\n\n- Fix the farewell" in changelog
    assert "Initial release" not in changelog.split("## [1.0.0]")[0]  # only since v1.0.0
    output = result["output"]
    assert isinstance(output, dict) and output["tag"] == "v1.1.0"
    assert output["previous_release"] == "v1.0.0"


def test_failing_tests_stop_the_release_before_anything_changes(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    code, result, stderr = _run(repo, "1.1.0", tests=FAILING)
    assert code == 1 and result["status"] == "failed", stderr
    assert "The tests fail: fix them before releasing" in json.dumps(result)
    assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "tag", "--list") == "v1.0.0"
    assert 'version = "1.0.0"' in (repo / "pyproject.toml").read_text(encoding="utf-8")


def test_a_dirty_working_tree_is_refused_at_step_one(repo: Path) -> None:
    (repo / "notes.txt").write_text("uncommitted", encoding="utf-8")
    code, result, stderr = _run(repo, "1.1.0")
    assert code == 1, stderr
    assert "Commit or stash the changes before releasing" in json.dumps(result)
    assert _git(repo, "tag", "--list") == "v1.0.0"


def test_a_version_not_above_the_latest_tag_fails_the_bump_check(repo: Path) -> None:
    code, result, stderr = _run(repo, "0.9.0")
    assert code == 1, stderr
    text = json.dumps(result)
    assert "not greater than the latest release tag v1.0.0" in text
    assert _git(repo, "tag", "--list") == "v1.0.0"  # stopped before the agent tagged


def test_the_scripted_performer_answers_tasks_as_written_and_refuses_unknown_ones(
    repo: Path,
) -> None:
    tasks = [
        {
            "id": "t1",
            "text": "MUST set the project version in pyproject.toml to the release version.",
        },
        {"id": "t2", "text": "**MUST** deploy to production"},
    ]
    reports = answer(tasks, {"repo": str(repo), "version": "1.1.0"})
    assert reports[0]["id"] == "t1" and reports[0]["outcome"] == "done"
    assert "1.1.0" in reports[0]["note"]
    assert reports[1] == {
        "id": "t2",
        "outcome": "failed",
        "note": "the scripted performer has no answer for '**MUST** deploy to production'",
    }


def test_the_performer_script_turns_a_paused_result_into_reports(repo: Path) -> None:
    paused = {
        "run_id": "r-1",
        "status": "paused",
        "params": {"repo": str(repo), "version": "1.1.0"},
        "tasks": [
            {
                "id": "s2.1",
                "text": "set the project version in pyproject.toml to the release version",
            }
        ],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "handlers.release.performer"],
        input=json.dumps(paused),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["run_id"] == "r-1" and [r["outcome"] for r in out["reports"]] == ["done"]
    assert 'version = "1.1.0"' in (repo / "pyproject.toml").read_text(encoding="utf-8")
