"""SOPs as files other agent tools read: Agent Skills folders and Cursor commands.

Agent Skills (agentskills.io): a folder per skill holding ``SKILL.md``, YAML front matter
with ``name`` (1-64 characters of ``a-z``, ``0-9`` and ``-``, no leading, trailing or
doubled hyphen, equal to the folder's name) and ``description`` (1-1024 characters),
then markdown. Cursor commands: plain markdown files in ``.cursor/commands/`` (Cursor
reads no front matter), one per command, named by the file.

Both bodies are the SOP's own text (its front matter dropped: the skill has its own)
after a short note saying how to run it through the engine, so an agent that only
reads the file still knows the engine can keep the order and the record.
Writing is idempotent: a file whose content is already right is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.errors import SopError, UsageError
from engine.model import Sop

__all__ = [
    "Written",
    "cursor_files",
    "render",
    "skill_files",
    "skill_name_problem",
    "write_files",
]

SKILL_NAME_MAX = 64
DESCRIPTION_MAX = 1024
_SKILL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Written:
    """One exported file: where (relative to the export folder) and whether it changed."""

    path: Path
    changed: bool


def skill_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Agent Skills ``name``, or None when it is."""
    if not name or len(name) > SKILL_NAME_MAX:
        return f"must be 1-{SKILL_NAME_MAX} characters (has {len(name)})"
    if _SKILL_NAME.fullmatch(name) is None:
        return (
            "must be lowercase letters, digits and single hyphens, "
            "not starting or ending with a hyphen"
        )
    return None


def _body(text: str) -> str:
    """The SOP's markdown without its YAML front matter."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                return "\n".join(lines[i + 1 :]).lstrip("\n")
    return text


def _description(sop: Sop) -> str:
    first = next((p for p in sop.overview.split("\n\n") if p.strip()), "")
    text = " ".join(first.split()) or f"Perform the {sop.title or sop.name} procedure."
    if len(text) > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - 3].rstrip() + "..."
    return text


def _how_to_run(sop: Sop) -> str:
    tool = sop.name.replace("-", "_")
    params = " ".join(f"-p {p.name}=..." for p in sop.parameters if p.required)
    run = f"sop run {sop.name}" + (f" {params}" if params else "")
    performer = (sop.metadata.get("Performer") or "").strip().lower()
    tasks = (
        " (it pauses with the tasks that are yours; report each with `sop report RUN_ID "
        "TASK --done --note ...`, then `sop resume RUN_ID`)"
        if performer in ("agent", "person")
        else ""
    )
    return (
        "> Run this SOP through sop-engine, which keeps the order of the steps, enforces "
        "every MUST, checks with code what code can check and records what was done: "
        f"`sop plan {sop.name}` shows what will run, `{run}` runs it{tasks}, or call "
        f"the MCP tool `{tool}` of `sop mcp`. The procedure follows.\n"
    )


def skill_files(sop: Sop) -> dict[Path, str]:
    """``NAME/SKILL.md`` for one SOP; a name the Agent Skills rules refuse is a UsageError."""
    problem = skill_name_problem(sop.name)
    if problem is not None:
        where = sop.path or sop.name
        raise UsageError(f"{where}: SOP name '{sop.name}' is not a valid skill name: {problem}")
    front = {
        "name": sop.name,
        "description": _description(sop),
        "metadata": {"sop-version": sop.version or "", "source": "sop-engine"},
    }
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000)
    text = f"---\n{header}---\n\n{_how_to_run(sop)}\n{_body(sop.text).rstrip()}\n"
    return {Path(sop.name) / "SKILL.md": text}


def cursor_files(sop: Sop) -> dict[Path, str]:
    """``NAME.md`` for one SOP (Cursor offers it as ``/NAME``): plain markdown."""
    if "/" in sop.name or sop.name in ("", ".", ".."):
        raise UsageError(f"{sop.path or sop.name}: SOP name '{sop.name}' is not a file name")
    return {Path(f"{sop.name}.md"): f"{_how_to_run(sop)}\n{_body(sop.text).rstrip()}\n"}


def render(kind: str, sops: Iterable[Sop]) -> dict[Path, str]:
    """Every file of an export, all SOPs checked before anything is written."""
    make = skill_files if kind == "skills" else cursor_files
    files: dict[Path, str] = {}
    for sop in sops:
        files.update(make(sop))
    return files


def write_files(directory: Path, files: dict[Path, str]) -> Sequence[Written]:
    """Write ``files`` under ``directory`` (created as needed); unchanged files stay untouched."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"export folder '{directory}' is a file, not a folder")
    out: list[Written] = []
    for relative, text in sorted(files.items()):
        target = directory / relative
        data = text.encode("utf-8")
        try:
            if target.is_file() and target.read_bytes() == data:
                out.append(Written(relative, False))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            partial.replace(target)  # never a half-written file for an agent to read
        except OSError as exc:
            raise SopError(f"cannot write '{target}': {exc.strerror or exc}") from exc
        out.append(Written(relative, True))
    return out
