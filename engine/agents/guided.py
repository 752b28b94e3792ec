"""Guided runs over MCP: an agent performs an SOP's lines while the engine keeps the order.

Calling an SOP's tool starts its run; a run that waits for the performer comes back
with ``tasks``. ``report_tasks`` records the agent's reports (journaled before the run
goes on, by ``engine.report``) and answers with the next tasks, what is still open, or
the final result. Each SOP is also a prompt (``user_input``) that frames it for the
agent the way the peer toolchain's prompts do, but pointing at these tools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.agents.tools import REPORT_TASKS
from engine.binding.registry import Registry
from engine.execution.guided import report
from engine.execution.result import RunResult
from engine.model import Sop
from engine.storage.journal import Journal

__all__ = ["AGENT", "USER_INPUT", "prompt_text", "report_tasks", "waiting_summary"]

#: who the journal says reported, for reports that come over MCP
AGENT = "agent (mcp)"
#: the prompt argument that carries what the user asked for
USER_INPUT = "user_input"


def report_tasks(
    args: Mapping[str, Any], *, registry: Registry, journal: Callable[[], Journal]
) -> RunResult:
    """``report_tasks`` {run_id, reports}: record them, continue the run (SopError: refused,
    nothing recorded)."""
    reports = [dict(item) for item in args["reports"]]
    with journal() as jr:
        return report(str(args["run_id"]), reports, by=AGENT, registry=registry, journal=jr)


def waiting_summary(data: Mapping[str, Any]) -> str:
    """The text an agent reads for a waiting result: what to do next, and how to report."""
    tasks = list(data.get("tasks") or [])
    if not tasks:
        return ""
    first = tasks[0]
    where = f"step {first['step']} ({first['step_title']})" if first["step"] else "SOP-wide"
    open_ = "; ".join(f"{t['id']}: {t['level']} {t['text']}" for t in tasks)
    return (
        f" - waiting for the {first['performer']}'s reports on {len(tasks)} task(s) of {where}."
        f" Do them, then call {REPORT_TASKS}(run_id={data.get('run_id')!r}, reports=[{{id,"
        " outcome: done|skipped|failed, note}]) with evidence in each note (SHOULD/MAY may be"
        f" skipped with a reason; MUST lines must be done). Open: {open_}"
    )


def prompt_text(sop: Sop, tool: str | None, user_input: str = "") -> str:
    """The SOP framed for an agent: run it through the engine, report every task."""
    start = f"Call the `{tool}` tool" if tool else "Start the run with its tool"
    asked = user_input.strip() or "(none given: ask the user for the required parameters)"
    return (
        f"Run this SOP: {sop.title or sop.name}.\n\n"
        f"{start} with the parameters taken from the user's input. The engine keeps the"
        " order, runs the lines code can do, and returns the open `tasks` of the current"
        " step. Perform each task, then report it with"
        f" `{REPORT_TASKS}` (done with a note giving evidence; skipped with a reason for"
        " SHOULD/MAY; failed with what went wrong). Repeat until the run's status is"
        " `succeeded` or `failed`; never skip a MUST. If the session ends, the run can be"
        " continued later by its run_id (`inspect_run` shows its progress).\n\n"
        f"User input: {asked}\n\n"
        f"The SOP:\n\n{sop.text}"
    )
