"""The open tasks of a guided run, and its checklist walked at a terminal (``--performer person``).

A waiting run (exit 3) lists its open tasks. Scripts report them one at a time with
``sop report RUN_ID TASK --done|--skip|--fail --note TEXT``; a person at a terminal
walks them step by step (rich prompts: done / skip with a reason / fail, a note, a
progress line). Ctrl-C leaves the run waiting: nothing is reported for the step being
answered, and ``sop resume RUN_ID`` (or ``sop report``) picks it up from the journal.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from engine.errors import SopError
from engine.execution.result import RunResult, RunStatus

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.storage.base import Store

__all__ = ["interactive", "task_lines", "walk_checklist"]


def task_lines(result: RunResult, args: argparse.Namespace | None = None) -> list[str]:
    """The open tasks of a waiting run and the commands that report them."""
    data = result.to_dict(validate=False)
    tasks = data.get("tasks") or []
    if not tasks:
        return []
    first = tasks[0]
    where = f"step {first['step']}: {first['step_title']}" if first["step"] else "SOP-wide"
    lines = [f"waiting for the {first['performer']}'s reports ({where}):"]
    for task in tasks:
        lines.append(f"  {task['id']:<22} {task['level']:<9} {task['file']}:{task['line']}")
        lines.append(f"      {task['text']}")
    journal = getattr(args, "journal", None)
    tail = f" --journal {shlex.quote(str(journal))}" if journal else ""
    lines.append("report each one with:")
    lines.append(f"  sop report {result.run_id} TASK --done|--skip|--fail --note TEXT{tail}")
    return lines


def interactive(args: argparse.Namespace, result: RunResult) -> bool:
    """Walk the checklist here: a person performs tasks, on a terminal, no --json."""
    if result.status is not RunStatus.WAITING or getattr(args, "json", False):
        return False
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    return any(task.get("performer") == "person" for task in result.tasks)


def walk_checklist(
    result: RunResult, *, registry: Registry | None, journal: Store, by: str | None = None
) -> RunResult:
    """Ask a person about each open task, step by step, until the run no longer waits.

    Each step's answers are reported together (``engine.report``): a refusal (a skipped
    MUST, a missing reason) is shown and the step asked again. KeyboardInterrupt / EOF
    propagate: the caller leaves the run waiting.
    """
    from rich.console import Console
    from rich.panel import Panel
    from rich.prompt import Prompt

    from engine.execution.guided import report

    console = Console()
    while result.status is RunStatus.WAITING and result.tasks:
        tasks = result.tasks
        first = tasks[0]
        done = sum(1 for a in result.actions if a.status.value in ("passed", "skipped", "failed"))
        total = len(result.actions)
        title = f"Step {first['step']}: {first['step_title']}" if first["step"] else "SOP-wide"
        console.print(Panel(first["prose"] or "", title=title, expand=False))
        console.print(f"[dim]progress: {done}/{total} lines settled, {len(tasks)} task(s) here[/]")
        answers: list[dict[str, Any]] = []
        for number, task in enumerate(tasks, 1):
            console.print(
                f"[bold]({number}/{len(tasks)}) {task['level']}[/] {task['text']}"
                f"  [dim]{task['file']}:{task['line']}[/]"
            )
            choices = ["done", "fail"] if task.get("required") else ["done", "skip", "fail"]
            choice = Prompt.ask("  outcome", choices=choices, default="done", console=console)
            outcome = {"done": "done", "skip": "skipped", "fail": "failed"}[choice]
            label = {"done": "note (evidence)", "skipped": "reason", "failed": "what failed"}
            note = ""
            while not note:
                note = Prompt.ask(f"  {label[outcome]}", default="", console=console).strip()
                if note or outcome == "done":
                    break
                console.print("  [red]a reason is required[/]")
            answers.append({"id": task["id"], "outcome": outcome, "note": note})
        try:
            result = report(result.run_id, answers, by=by, registry=registry, journal=journal)
        except SopError as exc:
            console.print(f"[red]refused:[/] {exc}")
    return result
