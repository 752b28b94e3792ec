"""The release-runbook lines code can check, run against the repository the run names.

Each failure raises ``SopFailure`` with the SOP's own condition ("tests failing",
"version not bumped", ...), so the run answers with the SOP's Error Handling message,
and attaches the facts (what git or the test command said) as details.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from engine import RunContext, SopFailure, action, check
from handlers.release.repo import (
    GitError,
    git,
    has_changelog_entry,
    latest_release,
    parse_version,
    project_version,
    tag_name,
)

SOP = "release-runbook"
#: a test suite may run longer than the engine's default 120 s per action
TEST_TIMEOUT = 1800.0
_TAIL_LINES = 20


def _repo(ctx: RunContext) -> Path:
    repo = Path(str(ctx.params["repo"])).expanduser()
    if not (repo / ".git").exists():
        raise SopFailure("not a git repository", f"'{repo}' is not a git repository")
    return repo


def _clean(ctx: RunContext) -> None:
    """Tracked files only: a test run leaves untracked caches that belong to no release."""
    repo = _repo(ctx)
    try:
        changed = git(repo, "status", "--porcelain", "--untracked-files=no")
    except GitError as exc:
        raise SopFailure("working tree not clean", str(exc)) from exc
    if changed:
        files = [line[3:] for line in changed.splitlines()]
        raise SopFailure(
            "working tree not clean",
            f"uncommitted changes in {', '.join(files[:5])}",
            details={"files": files},
        )


def _tests(ctx: RunContext) -> None:
    repo = _repo(ctx)
    command = shlex.split(str(ctx.params.get("test_command") or "python -m pytest -q"))
    try:
        done = subprocess.run(
            command,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=TEST_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SopFailure("tests failing", f"{shlex.join(command)}: {exc}") from exc
    ctx.log.info("%s exited %s", shlex.join(command), done.returncode)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-_TAIL_LINES:]
        raise SopFailure(
            "tests failing",
            f"{shlex.join(command)} exited {done.returncode}",
            details={"exit_code": done.returncode, "output_tail": "\n".join(tail)},
        )


@action("verify the working tree is clean", sop=SOP)
def working_tree_clean(ctx: RunContext) -> None:
    _clean(ctx)


@check("the working tree is clean after the release commit", sop=SOP)
def clean_after_commit(ctx: RunContext) -> bool:
    _clean(ctx)
    return True


@action("verify the tests pass", sop=SOP, timeout=TEST_TIMEOUT + 30)
def tests_pass(ctx: RunContext) -> None:
    _tests(ctx)


@check("the tests pass at the release commit", sop=SOP, timeout=TEST_TIMEOUT + 30)
def tests_pass_at_release(ctx: RunContext) -> bool:
    _tests(ctx)
    return True


@check("the project version in pyproject.toml equals the release version", sop=SOP)
def version_set(ctx: RunContext) -> bool:
    wanted = str(ctx.params["version"])
    try:
        found = project_version(_repo(ctx))
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise SopFailure("version not bumped", f"pyproject.toml: {exc}") from exc
    if found != wanted:
        raise SopFailure(
            "version not bumped",
            f"pyproject.toml says version {found!r}, the release is {wanted!r}",
            details={"pyproject_version": found, "release_version": wanted},
        )
    return True


@check("the release version is greater than the latest release tag", sop=SOP)
def version_bumped(ctx: RunContext) -> bool:
    wanted = str(ctx.params["version"])
    release = parse_version(wanted)
    try:
        latest = latest_release(_repo(ctx))
    except GitError as exc:
        raise SopFailure("version not bumped", str(exc)) from exc
    if release is None:
        raise SopFailure("version not bumped", f"release version {wanted!r} is not X.Y.Z")
    if latest is not None and release <= latest[1]:
        raise SopFailure(
            "version not bumped",
            f"release version {wanted} is not greater than the latest release tag {latest[0]}",
            details={"latest_tag": latest[0], "release_version": wanted},
        )
    ctx.output["previous_release"] = latest[0] if latest else None
    return True


@check("CHANGELOG.md has an entry for the release version", sop=SOP)
def changelog_entry(ctx: RunContext) -> bool:
    return has_changelog_entry(_repo(ctx), str(ctx.params["version"]))


@check("the release tag points at the current commit", sop=SOP)
def tag_at_head(ctx: RunContext) -> bool:
    repo = _repo(ctx)
    tag = tag_name(str(ctx.params["version"]))
    try:
        kind = git(repo, "cat-file", "-t", f"refs/tags/{tag}")
        tagged = git(repo, "rev-parse", f"refs/tags/{tag}^{{commit}}")
        head = git(repo, "rev-parse", "HEAD")
    except GitError as exc:
        raise SopFailure("tag missing", f"no release tag {tag}: {exc}") from exc
    if kind != "tag":
        raise SopFailure("tag missing", f"{tag} is a lightweight tag; the SOP asks for annotated")
    if tagged != head:
        raise SopFailure("tag missing", f"{tag} points at {tagged[:12]}, HEAD is {head[:12]}")
    ctx.output["tag"] = tag
    ctx.output["commit"] = head
    return True
