"""The release-runbook demo: a throw-away git project released by the scripted performer.

    python -m handlers.release.demo            # guided: the run pauses for the agent's
                                               # tasks, the scripted performer reports them
    python -m handlers.release.demo --as-code  # the performer bound as code, one run

Guided mode speaks the command-line contract of DESIGN.md: ``sop run ... --json`` exits
3 with the open ``tasks`` (id, text), each is answered with ``sop report RUN_ID TASK
--done|--fail --note NOTE --json``; the step's last report continues the run, until it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from handlers.release.performer import answer
from handlers.release.repo import git

EXIT_PAUSED = 3
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Release Demo",
    "GIT_AUTHOR_EMAIL": "release-demo@example.invalid",
    "GIT_COMMITTER_NAME": "Release Demo",
    "GIT_COMMITTER_EMAIL": "release-demo@example.invalid",
}


def make_project(root: Path) -> Path:
    """A project released once as v0.1.0, with a passing test and two commits since."""
    repo = root / "demo-project"
    (repo / "tests").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "demo-project"\nversion = "0.1.0"\n', encoding="utf-8"
    )
    (repo / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [0.1.0] - 2026-01-01\n\n### Added\n\n- First release\n",
        encoding="utf-8",
    )
    (repo / "greet.py").write_text('def greet(who):\n    return "hi " + who\n', encoding="utf-8")
    (repo / "tests" / "test_greet.py").write_text(
        "from greet import greet\n\ndef test_greet():\n    assert greet('x') == 'hi x'\n",
        encoding="utf-8",
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "First release")
    git(repo, "tag", "-a", "v0.1.0", "-m", "Release 0.1.0")
    for subject, line in (
        ("Add a farewell", "def bye(who):\n    return 'bye ' + who\n"),
        ("Fix the greeting's spacing", ""),
    ):
        with (repo / "greet.py").open("a", encoding="utf-8") as handle:
            handle.write(line)
        (repo / "NOTES").write_text(subject, encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", subject)
    return repo


def sop(*args: str, echo: bool = True) -> tuple[int, dict[str, Any]]:
    """``sop ARGS`` as a subprocess; its JSON result (empty when it printed none).
    ``echo``: show the command and its stderr (the reports only show the performer's line)."""
    if echo:
        print("$ sop " + shlex.join(args), flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, check=False
    )
    if echo or done.returncode not in (0, EXIT_PAUSED):
        sys.stderr.write(done.stderr)
    try:
        result = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        sys.stdout.write(done.stdout)
        result = {}
    return done.returncode, result if isinstance(result, dict) else {}


def _tasks(result: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = result.get("tasks") or (result.get("pending") or {}).get("tasks") or []
    return [t for t in tasks if isinstance(t, dict)]


def guided(params: dict[str, str], journal: str) -> int:
    flags = [arg for key, value in params.items() for arg in ("-p", f"{key}={value}")]
    code, result = sop("run", "release-runbook", *flags, "--journal", journal, "--json")
    while code == EXIT_PAUSED and _tasks(result):
        run_id = str(result["run_id"])
        for report in answer(_tasks(result), params):
            outcome = {"done": "--done", "skipped": "--skip", "failed": "--fail"}[report["outcome"]]
            print(f"  sop report {report['id']} --{report['outcome']}: {report['note']}")
            code, result = sop("report", run_id, report["id"], outcome, "--note", report["note"],
                               "--journal", journal, "--json", echo=False)  # fmt: skip
        # the last report of a step continues the run: its result is the run's state now
    return _finish(code, result)


def as_code(params: dict[str, str], journal: str) -> int:
    flags = [arg for key, value in params.items() for arg in ("-p", f"{key}={value}")]
    code, result = sop(
        "run", "release-runbook", *flags, "--handlers", "handlers.release.as_code",
        "--journal", journal, "--json",
    )  # fmt: skip
    return _finish(code, result)


def _finish(code: int, result: dict[str, Any]) -> int:
    print(f"status: {result.get('status', '-')} (exit {code})")
    if result.get("output"):
        print("output: " + json.dumps(result["output"]))
    actions = [a for a in result.get("actions") or [] if isinstance(a, dict)]
    by_status: dict[str, int] = {}
    for action in actions:
        by_status[str(action.get("status"))] = by_status.get(str(action.get("status")), 0) + 1
    print("lines: " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())))
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.release.demo", description=__doc__)
    parser.add_argument("--as-code", action="store_true", help="bind the performer as code")
    parser.add_argument("--version", default="0.2.0", help="the version to release")
    args = parser.parse_args(argv)
    for key, value in _IDENTITY.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory(prefix="sop-release-demo-") as tmp:
        repo = make_project(Path(tmp))
        params = {
            "repo": str(repo),
            "version": args.version,
            "test_command": shlex.join(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            ),
        }
        journal = str(Path(tmp) / "journal.db")
        code = (as_code if args.as_code else guided)(params, journal)
        print(git(repo, "log", "--oneline", "--decorate", "-3"))
    return code


if __name__ == "__main__":
    sys.exit(main())
