"""``engine.report``: a performer's reports on the tasks a guided run waits for.

Each report is checked against the step the run waits on (an open task, a known
outcome, no skipped MUST, a reason for a skip), journaled (who, when, the note;
redacted) and only then acted on: the run resumes from its journal, bound lines
already done are not run again, and it either waits on what is still open, goes on
to the next steps, or fails by the SOP's error rules. Any process can report: the
run's lease is taken first, and everything else comes from the journal.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from typing import Any

from engine.binding.registry import Registry
from engine.errors import SopError, UsageError
from engine.execution.performer import REPORTED, Tasks, check_reports
from engine.execution.record import crashpoint
from engine.execution.replay import read_replay
from engine.execution.result import RunResult, RunStatus
from engine.execution.runner import resume_held, resume_plan
from engine.storage.base import Store
from engine.storage.journals import JOURNALS

__all__ = ["report", "reporter"]


def reporter() -> str:
    """Who reports when the caller names no one: the operating system's user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def report(
    run_id: str,
    reports: Sequence[Mapping[str, Any]],
    *,
    by: str | None = None,
    params: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
) -> RunResult:
    """Record ``reports`` ([{id, outcome: done|skipped|failed, note}]) on a waiting run,
    then continue it. SopError (nothing recorded) when any report is refused; the result
    waits again while a task of the step is open (``tasks`` lists them)."""
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    try:
        row = jr.run(run_id)
        if row is None:
            raise UsageError(f"unknown run '{run_id}' (journal {jr.location})")
        if row.status != RunStatus.WAITING.value:
            raise SopError(f"run {run_id} is {row.status}, not waiting for a performer's reports")
        jr.acquire_lease(run_id)
        try:
            started = jr.verified_run(run_id)
            planned = resume_plan(started, jr, registry, params)
            tasks = Tasks(planned, read_replay(jr, run_id).reports)
            checked = check_reports(tasks, reports, run_id)
            who = by or reporter()
            target = os.environ.get("SOP_CRASH_AFTER")
            for item in checked:  # journaled before anything acts on it
                task_id = item.task.action.id
                jr.append(run_id, REPORTED, task_id, data=item.data(who))
                crashpoint(REPORTED, task_id, target)
            return resume_held(
                run_id, params=params, registry=registry, journal=jr, services=services
            )
        finally:
            jr.release_lease(run_id)
    finally:
        if owned:
            JOURNALS.release(jr)
