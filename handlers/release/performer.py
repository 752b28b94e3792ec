"""A scripted performer for release-runbook: answers the agent's tasks by doing them.

For the demo and the tests, where no language model is at hand: each agent line of
``sops/release-runbook.sop.md`` has a function here that does what the line asks in
the run's repository and returns the note a performer reports (the evidence: files,
commits, tags). Lines are matched as the engine binds them (``normalize``: case,
emphasis, the keyword and trailing punctuation do not matter); a task it has no
answer for is reported failed, never silently done.

``answer(tasks, params)`` -> reports ``{id, outcome, note}``, the shape of the MCP
``report_tasks`` tool and of ``sop report RUN_ID TASK --done --note NOTE``. As a
script it reads a paused run result (``sop run release-runbook ... --json``) on
stdin and prints ``{"run_id": ..., "reports": [...]}``::

    sop run release-runbook -p repo=R -p version=1.1.0 --json | python -m handlers.release.performer
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.binding.normalize import normalize
from engine.execution.redact import redact_text
from handlers.release.repo import GitError, git, latest_release, tag_name

__all__ = ["PERFORMS", "answer", "main"]

Perform = Callable[[Path, str], str]  # (repo, version) -> the note
_SECTIONS = (("Added", ("add", "new", "introduce")), ("Fixed", ("fix", "repair", "correct")))


def bump_version(repo: Path, version: str) -> str:
    """``[project] version = "..."`` in pyproject.toml -> the release version."""
    path = repo / "pyproject.toml"
    lines = path.read_text(encoding="utf-8").split("\n")
    section = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[project]" and re.match(r"version\s*=", stripped):
            old = stripped.split("=", 1)[1].strip()
            lines[i] = f'version = "{version}"'
            path.write_text("\n".join(lines), encoding="utf-8")
            return f'pyproject.toml: version {old} -> "{version}"'
    raise ValueError("pyproject.toml has no [project] version line")


def _section(subject: str) -> str:
    first = subject.split(maxsplit=1)[0].lower() if subject.split() else ""
    for title, verbs in _SECTIONS:
        if first.startswith(verbs):
            return title
    return "Changed"


def write_changelog(repo: Path, version: str) -> str:
    """A ``## [VERSION] - DATE`` entry from the commit subjects since the latest tag."""
    latest = latest_release(repo)
    span = f"{latest[0]}..HEAD" if latest else "HEAD"
    subjects = [s for s in git(repo, "log", "--pretty=format:%s", span).splitlines() if s]
    grouped: dict[str, list[str]] = {}
    for subject in reversed(subjects):  # oldest first
        grouped.setdefault(_section(subject), []).append(redact_text(subject))
    entry = [f"## [{version}] - {datetime.date.today().isoformat()}", ""]
    for title in ("Added", "Changed", "Fixed"):
        if title in grouped:
            entry += [f"### {title}", "", *(f"- {s}" for s in grouped[title]), ""]
    path = repo / "CHANGELOG.md"
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Changelog\n"
    head, sep, rest = old.partition("\n## ")
    text = f"{head.rstrip()}\n\n" + "\n".join(entry) + (f"\n## {rest}" if sep else "")
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    since = f"since {latest[0]}" if latest else "since the first commit"
    return f"CHANGELOG.md: entry for {version}, {len(subjects)} commits {since}"


def grouped_note(repo: Path, version: str) -> str:
    return "the entry is grouped under Added, Changed and Fixed (the headings that have commits)"


def commit(repo: Path, version: str) -> str:
    git(repo, "add", "pyproject.toml", "CHANGELOG.md")
    git(repo, "commit", "-q", "-m", f"Release {version}")
    return f"commit {git(repo, 'rev-parse', '--short', 'HEAD')} 'Release {version}'"


def tag(repo: Path, version: str) -> str:
    name = tag_name(version)
    git(repo, "tag", "-a", name, "-m", f"Release {version}")
    return f"annotated tag {name} on {git(repo, 'rev-parse', '--short', 'HEAD')}"


def not_pushed(repo: Path, version: str) -> str:
    return f"{tag_name(version)} not pushed: the release owner pushes it"


def no_secrets(repo: Path, version: str) -> str:
    path = repo / "CHANGELOG.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if redact_text(text) != text:
        raise ValueError("CHANGELOG.md holds what looks like a card number or an API key")
    return "the changelog holds commit subjects only, none with a key or card number"


#: each agent line of the SOP (as written, keyword left out) -> what performs it
PERFORMS: dict[str, Perform] = {
    "set the project version in pyproject.toml to the release version": bump_version,
    "add a changelog entry for the release version to CHANGELOG.md, summarising the commits "
    "since the latest release tag": write_changelog,
    "group the changelog entry under Added, Changed and Fixed": grouped_note,
    "commit the version bump and the changelog": commit,
    "create an annotated release tag on the release commit": tag,
    "push the release tag, because a published tag cannot be taken back and the person who "
    "owns the release pushes it": not_pushed,
    "put credentials or tokens in the changelog, because the changelog is published with the "
    "release": no_secrets,
}
_BY_TEXT = {normalize(text): perform for text, perform in PERFORMS.items()}


def find(text: str) -> Perform | None:
    """The function performing the line ``text`` (written any way the engine accepts)."""
    return _BY_TEXT.get(normalize(text))


def answer(tasks: Iterable[Mapping[str, Any]], params: Mapping[str, Any]) -> list[dict[str, str]]:
    """Perform each task in order; one report per task, ``failed`` with the reason on error."""
    repo = Path(str(params["repo"])).expanduser()
    version = str(params["version"])
    reports: list[dict[str, str]] = []
    for task in tasks:
        task_id = str(task.get("id", ""))
        perform = find(str(task.get("text", "")))
        if perform is None:
            note = f"the scripted performer has no answer for {task.get('text')!r}"
            reports.append({"id": task_id, "outcome": "failed", "note": note})
            continue
        try:
            reports.append({"id": task_id, "outcome": "done", "note": perform(repo, version)})
        except (OSError, ValueError, GitError) as exc:
            reports.append({"id": task_id, "outcome": "failed", "note": str(exc)})
    return reports


def main(argv: list[str] | None = None) -> int:
    """A paused run result on stdin -> ``{"run_id", "reports"}`` on stdout."""
    result = json.load(sys.stdin)
    tasks = result.get("tasks") or (result.get("pending") or {}).get("tasks") or []
    params = result.get("params") or {}
    for arg in argv if argv is not None else sys.argv[1:]:  # KEY=VALUE overrides
        key, _, value = arg.partition("=")
        params[key] = value
    json.dump({"run_id": result.get("run_id"), "reports": answer(tasks, params)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
