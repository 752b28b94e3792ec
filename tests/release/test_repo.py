"""What the release checks read from a repository: versions, tags, changelog headings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from handlers.release.repo import GitError, git, has_changelog_entry, latest_release


@pytest.mark.parametrize(
    ("heading", "found"),
    [
        ("## [1.1.0] - 2026-12-03", True),
        ("## v1.1.0", True),
        ("### Release 1.1.0.", True),
        ("## [11.1.0]", False),
        ("## [1.1.0.1]", False),
        ("## [1.1.01]", False),
        ("- 1.1.0 is not a heading", False),
    ],
)
def test_a_changelog_entry_is_a_heading_naming_exactly_the_version(
    tmp_path: Path, heading: str, found: bool
) -> None:
    (tmp_path / "CHANGELOG.md").write_text(f"# Changelog\n\n{heading}\n", encoding="utf-8")
    assert has_changelog_entry(tmp_path, "1.1.0") is found


def test_no_changelog_is_no_entry(tmp_path: Path) -> None:
    assert has_changelog_entry(tmp_path, "1.0.0") is False


def test_the_latest_release_is_the_highest_version_tag_not_the_newest(tmp_path: Path) -> None:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    subprocess.run(
        ["git", *ident, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
    )
    assert latest_release(tmp_path) is None  # before the first release
    for tag in ("v1.9.0", "v1.10.0", "nightly", "2.0"):
        git(tmp_path, "tag", tag)
    assert latest_release(tmp_path) == ("v1.10.0", (1, 10, 0))


def test_a_failing_git_command_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        git(tmp_path / "missing", "status")
    assert str(caught.value).startswith("git status: ") and "\n" not in str(caught.value)
