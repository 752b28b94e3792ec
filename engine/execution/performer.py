"""Lines an agent or a person performs: the tasks a guided run waits for, and their reports.

In each step the walk runs the bound lines in document order up to the first performer
line; the run then waits (RunStatus.WAITING) with the step's open tasks. A performer
reports each task (``task_reported`` events, journaled before anything acts on them);
once every task of the step is settled the walk goes on. A task is settled by a report
``done`` (a MUST NOT: acknowledged), ``skipped`` (SHOULD / MAY only, with a reason) or
``failed``: the SOP's Error Handling gives the message, its Error Recovery may give the
performer further attempts (the task opens again), else the failure stands like a
handler's.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import SopError, SopFailure
from engine.execution.cause import sop_message
from engine.execution.result import ActionResult, ActionStatus
from engine.execution.retry import policy_for
from engine.execution.step import Outcome
from engine.model import Sop, Step
from engine.storage.base import Store

if TYPE_CHECKING:
    from engine.binding.planner import Binding, Plan

#: the journal event of one report
REPORTED = "task_reported"
#: what a performer may report
OUTCOMES = ("done", "skipped", "failed")
#: the journal event that records the run's ``--performer`` (with its plan)
PLAN_EVENT = "plan"


def run_performer(journal: Store, run_id: str) -> str | None:
    """The ``performer`` a run started with (journaled with its plan), for resume."""
    for event in journal.events(run_id):
        if event.type == PLAN_EVENT:
            found = event.data.get("performer")
            return found if isinstance(found, str) else None
    return None


def step_of(sop: Sop, number: int | None) -> Step | None:
    return next((s for s in sop.steps if s.number == number), None)


def task_dict(binding: Binding, sop: Sop, failures: int = 0) -> dict[str, Any]:
    """One open task as a waiting result lists it: what to do, where, and its step."""
    action = binding.action
    step = step_of(sop, action.step)
    prose = ""
    if step is not None:  # a step's first paragraph is its purpose when none is labelled
        said = step.purpose and step.text.startswith(step.purpose)
        prose = step.text if said else "\n\n".join(p for p in (step.purpose, step.text) if p)
    task: dict[str, Any] = {
        "id": action.id,
        "file": sop.path or sop.name,
        "line": action.line,
        "level": action.level.value,
        "kind": action.kind.value,
        "text": action.text,
        "step": action.step,
        "step_title": step.title if step else None,
        "prose": prose,
        "performer": binding.performer,
        "required": binding.required,
    }
    if failures:
        task["failures"] = failures
    return task


def task_line(binding: Binding, sop: Sop) -> str:
    """``file:line: MUST text``: how a refusal names a task."""
    action = binding.action
    return f"{sop.path or sop.name}:{action.line}: {action.level.value} {action.text}"


class Tasks:
    """A run's performer lines and what their reports (from the journal) settle."""

    def __init__(self, plan: Plan, reports: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self.plan = plan
        self.sop = plan.sop
        self.reports = reports

    def failures(self, binding: Binding) -> int:
        return sum(
            1 for r in self.reports.get(binding.action.id, ()) if r.get("outcome") == "failed"
        )

    def outcome(self, binding: Binding) -> Outcome | None:
        """The settled outcome of a task, or None while it is open."""
        reports = self.reports.get(binding.action.id) or ()
        if not reports:
            return None
        last = reports[-1]
        outcome, note = str(last.get("outcome")), str(last.get("note") or "")
        by = str(last.get("by") or binding.performer)
        action = binding.action
        if outcome == "done":
            reason = f"done by {by}" + (f": {note}" if note else "")
            return Outcome(ActionResult.of(action, None, ActionStatus.PASSED, reason, 1))
        if outcome == "skipped":
            reason = f"skipped by {by}: {note}"
            return Outcome(ActionResult.of(action, None, ActionStatus.SKIPPED, reason))
        failure = SopFailure(note or "failed")
        step = step_of(self.sop, action.step)
        attempts = self.failures(binding)
        if policy_for(failure, self.sop, step).attempts > attempts:
            return None  # the SOP's recovery gives the performer another attempt
        message = sop_message(failure, self.sop, step)
        result = ActionResult.of(action, None, ActionStatus.FAILED, message, attempts)
        return Outcome(result, message)

    def open_in(self, step: int | None) -> list[Binding]:
        """The performer lines of ``step`` on the path that no report settles yet."""
        return [
            b
            for b in self.plan.performer_lines
            if b.action.step == step and self.outcome(b) is None
        ]

    def step_failed(self, step: int | None) -> bool:
        """A required task of ``step`` failed for good: the run fails there."""
        for binding in self.plan.performer_lines:
            if binding.action.step == step and binding.required:
                settled = self.outcome(binding)
                if settled is not None and settled.result.status is ActionStatus.FAILED:
                    return True
        return False

    def waiting_step(self) -> tuple[int | None, list[Binding]] | None:
        """The first step (in plan order) with open tasks, and those tasks."""
        for binding in self.plan.performer_lines:
            if self.outcome(binding) is None:
                step = binding.action.step
                return step, self.open_in(step)
        return None

    def listed(self, bindings: Iterable[Binding]) -> list[dict[str, Any]]:
        return [task_dict(b, self.sop, self.failures(b)) for b in bindings]


def pending(binding: Binding) -> Outcome:
    """An open task: pending until its report."""
    reason = f"waiting for the {binding.performer}'s report"
    return Outcome(ActionResult.of(binding.action, None, ActionStatus.PENDING, reason))


@dataclass(frozen=True)
class Report:
    """One performer's report on one task, as journaled."""

    task: Binding
    outcome: str
    note: str

    def data(self, by: str) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return {"outcome": self.outcome, "note": self.note, "by": by, "at": now}


def find_task(tasks: Sequence[Binding], sop: Sop, wanted: str) -> Binding | None:
    """A task by its id, ``L12`` / ``12`` (its line) or ``file:12``."""
    text = wanted.strip()
    line = text.rsplit(":", 1)[-1].lstrip("Ll")
    for binding in tasks:
        if binding.action.id == text:
            return binding
    if line.isdigit():
        for binding in tasks:
            if binding.action.line == int(line):
                return binding
    return None


def check_reports(tasks: Tasks, raw: Sequence[Mapping[str, Any]], run_id: str) -> list[Report]:
    """The reports, each naming an open task of the step the run waits on, or SopError
    (one line naming the task by file:line) before anything is recorded."""
    waiting = tasks.waiting_step()
    if waiting is None:
        raise SopError(f"run {run_id} has no open tasks to report")
    step, open_tasks = waiting
    sop = tasks.sop
    if not raw:
        raise SopError(f"no reports given for run {run_id}")
    checked: list[Report] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, Mapping):
            raise SopError("each report must be an object {id, outcome, note}")
        wanted = str(item.get("id") or "")
        binding = find_task(open_tasks, sop, wanted)
        if binding is None:
            other = find_task(tasks.plan.performer_lines, sop, wanted)
            where = f"step {step}" if step is not None else "the SOP-wide guards"
            if other is not None:
                raise SopError(
                    f"{task_line(other, sop)}: not an open task (run {run_id} waits on {where})"
                )
            shown = ", ".join(b.action.id for b in open_tasks)
            raise SopError(f"run {run_id}: no open task '{wanted}' (open: {shown})")
        if binding.action.id in seen:
            raise SopError(f"{task_line(binding, sop)}: reported twice in one call")
        seen.add(binding.action.id)
        outcome = str(item.get("outcome") or "")
        if outcome not in OUTCOMES:
            raise SopError(
                f"{task_line(binding, sop)}: outcome '{outcome}' is not one of"
                f" {', '.join(OUTCOMES)}"
            )
        note = str(item.get("note") or "").strip()
        if outcome == "skipped":
            if binding.required:
                raise SopError(
                    f"{task_line(binding, sop)}: a {binding.action.level.value} line cannot be"
                    " skipped: report it done (or failed)"
                )
            if not note:
                raise SopError(f"{task_line(binding, sop)}: a skipped task needs a reason (note)")
        checked.append(Report(binding, outcome, note))
    return checked


__all__ = [
    "OUTCOMES",
    "PLAN_EVENT",
    "REPORTED",
    "Report",
    "Tasks",
    "check_reports",
    "find_task",
    "pending",
    "run_performer",
    "task_dict",
    "task_line",
]
