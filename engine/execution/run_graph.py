"""A run's journal read as the status of every SOP line, for drawing it on its graph.

Statuses: passed, failed, skipped, pending (waiting for a person), unknown (a side
effect may have happened; also a line whose call started and has no journaled end) and
``not reached`` (the run stopped before it, or has not got there yet). What the journal
says last wins: an action's own events, then the last journaled result (which holds
the lines the walk skipped as not reached), then the plan's skips. Child runs are
keyed ``child:SOP`` with their run status in the same words.
"""

from __future__ import annotations

from typing import Any

from engine.storage.base import Store

NOT_REACHED = "not reached"
_RUN_STATUS = {
    "succeeded": "passed",
    "failed": "failed",
    "blocked": "failed",
    "paused": "pending",
    "unknown": "unknown",
    "running": "unknown",
}


def _of_result(action: dict[str, Any]) -> str:
    status = str(action.get("status"))
    reason = str(action.get("reason") or "")
    return NOT_REACHED if status == "skipped" and reason.startswith("not reached") else status


def action_statuses(journal: Store, run_id: str) -> dict[str, str]:
    """Action id -> status in run ``run_id`` (lines absent from it: not reached)."""
    from_plan: dict[str, str] = {}
    from_result: dict[str, str] = {}
    from_events: dict[str, str] = {}
    in_flight: str | None = None
    for event in journal.events(run_id):
        data = event.data
        if event.type == "plan":
            from_plan = {str(s["id"]): "skipped" for s in data.get("skipped") or []}
        elif event.type in ("run_finished", "run_paused") and data.get("result"):
            from_result = {str(a["id"]): _of_result(a) for a in data["result"].get("actions", [])}
        elif event.action_id is None:
            continue
        elif event.type == "action_started":
            in_flight = event.action_id
        elif event.type == "action_finished":
            from_events[event.action_id] = _of_result(data.get("result") or {})
            in_flight = None
        elif event.type == "action_pending":
            from_events[event.action_id] = "pending"
            in_flight = None
    if in_flight is not None:
        from_events[in_flight] = "unknown"
    statuses = {**from_plan, **from_result, **from_events}
    for child in journal.children(run_id):
        statuses[f"child:{child.sop}"] = _RUN_STATUS.get(child.status, "unknown")
    return statuses
