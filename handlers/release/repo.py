"""What the release checks and the scripted performer read from a git repository.

Real commands (``git``) against the repository the run names; no git library, since
the few questions asked here are one plumbing command each.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

__all__ = [
    "GitError",
    "git",
    "has_changelog_entry",
    "latest_release",
    "parse_version",
    "project_version",
    "tag_name",
]

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
GIT_TIMEOUT = 60.0


class GitError(Exception):
    """A git command failed; the message is git's own first line."""


def git(repo: str | Path, *args: str) -> str:
    """``git -C repo ARGS`` -> its stdout, stripped; a failure is a GitError naming the command."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        first = (done.stderr.strip() or done.stdout.strip()).splitlines()[:1]
        raise GitError(f"git {' '.join(args)}: {first[0] if first else done.returncode}")
    return done.stdout.strip()


def tag_name(version: str) -> str:
    return f"v{version}"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``1.2.3`` or ``v1.2.3`` -> (1, 2, 3); anything else None."""
    found = _VERSION.fullmatch(text.strip())
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def latest_release(repo: str | Path) -> tuple[str, tuple[int, int, int]] | None:
    """The highest ``vX.Y.Z`` (or ``X.Y.Z``) tag and its version, or None before the first."""
    found = [(parse_version(tag), tag) for tag in git(repo, "tag", "--list").splitlines()]
    versions = [(version, tag) for version, tag in found if version is not None]
    if not versions:
        return None
    version, tag = max(versions)
    return tag, version


def project_version(repo: str | Path) -> str | None:
    """``[project] version`` of the repository's pyproject.toml (None when not declared)."""
    with (Path(repo) / "pyproject.toml").open("rb") as handle:
        data = tomllib.load(handle)
    project = data.get("project", {})
    version = project.get("version") if isinstance(project, dict) else None
    return version if isinstance(version, str) else None


def has_changelog_entry(repo: str | Path, version: str) -> bool:
    """CHANGELOG.md has a heading naming ``version`` (``## [1.2.0] - 2026-12-03``)."""
    path = Path(repo) / "CHANGELOG.md"
    if not path.is_file():
        return False
    pattern = re.compile(rf"^#{{1,6}}\s.*(?<![\d.]){re.escape(version)}(?!\w|\.\d)", re.MULTILINE)
    return pattern.search(path.read_text(encoding="utf-8")) is not None
