"""``sop inspect RUN_ID`` as a timeline: what happened when, read from the journal's events.

Each event becomes one line at its time relative to the run's start (``+0.000s``): an
action with its status, duration, attempts and reason (a failure's cause and redacted
traceback under it), retries, pauses, resumes (confirmed, and by whom when journaled),
the final status. Lines the run never reached are one line with their count.
``--follow`` prints the same lines as they are appended, until the run stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.execution.cause import summary
from engine.storage.base import Event

#: statuses of a run that is over for now (``--follow`` stops); exit codes as ``sop run``'s
STOPPED_EXIT = {
    "succeeded": 0,
    "failed": 1,
    "blocked": 1,
    "rejected": 1,
    "cancelled": 1,
    "paused": 3,
    "waiting": 3,
    "unknown": 4,
}


def instant(ts: str) -> float:
    """A journal timestamp (ISO 8601, UTC) as seconds since the epoch."""
    return datetime.fromisoformat(ts).timestamp()


def seconds(value: float) -> str:
    return f"{value:.3f}s"


def _result(event: Event) -> Mapping[str, Any]:
    result = event.data.get("result")
    return result if isinstance(result, dict) else {}


class Describer:
    """Action ids -> ``step 1 L13 MUST verify ...``, from the run's recorded result."""

    def __init__(self, actions: Iterable[Mapping[str, Any]]) -> None:
        self._actions = {str(a["id"]): a for a in actions}

    def __call__(self, action_id: str | None) -> str:
        action = self._actions.get(action_id or "")
        if action is None:
            return action_id or "-"
        step = f"step {action['step']}" if action.get("step") is not None else "guard"
        return f"{step} L{action['line']} {action['level']} {action['text']}"


def event_lines(event: Event, start: float, describe: Describer) -> list[str]:
    """The timeline line(s) of one event (none for bookkeeping events)."""
    at = f"  +{instant(event.ts) - start:.3f}s"
    data = event.data
    if event.type == "run_started":
        return [f"{at}  run started (pid {data.get('pid', '-')})"]
    if event.type == "run_resumed":
        how = "confirmed" if data.get("confirmed") else "resumed"
        who = data.get("by") or data.get("actor")
        took = f", took over from {data['took_over']}" if data.get("took_over") else ""
        by = f" by {who}" if who else ""
        return [f"{at}  run {how}{by} (pid {data.get('pid', '-')}{took})"]
    if event.type == "action_finished":
        result = _result(event)
        attempts = result.get("attempts") or 1
        tries = f", {attempts} attempts" if isinstance(attempts, int) and attempts > 1 else ""
        duration = result.get("duration_ms")
        took = seconds(float(duration) / 1000) if isinstance(duration, int | float) else "-"
        reason = f"  ({result['reason']})" if result.get("reason") else ""
        status = str(result.get("status", "?"))
        lines = [f"{at}  {status:<8} {describe(event.action_id)}  {took}{tries}{reason}"]
        cause = result.get("cause")
        if isinstance(cause, dict):
            lines.append(f"             cause: {summary(cause)}")
        traceback = data.get("traceback")
        if isinstance(cause, dict) and isinstance(traceback, str):
            lines.append("             traceback:")
            lines += [f"               {line}" for line in traceback.rstrip("\n").splitlines()]
        return lines
    if event.type == "action_retry":
        delay = data.get("delay")
        wait = f", retrying in {delay:.3f}s" if isinstance(delay, int | float) else ""
        return [
            f"{at}  retry    {describe(event.action_id)}: attempt {data.get('attempt')} failed:"
            f" {data.get('error')}{wait}"
        ]
    if event.type == "action_pending":
        return [f"{at}  pending  {describe(event.action_id)}  ({data.get('message')})"]
    if event.type in ("run_paused", "run_finished"):
        final = data.get("result") if isinstance(data.get("result"), dict) else {}
        assert isinstance(final, dict)
        status = final.get("status", "?")
        errors = final.get("errors") or []
        tail = f": {'; '.join(map(str, errors))}" if errors else ""
        word = "paused" if event.type == "run_paused" else "finished"
        return [f"{at}  run {word}{'' if status == word else ': ' + str(status)}{tail}"]
    if event.type == "plan":
        skipped = data.get("skipped")
        count = len(skipped) if isinstance(skipped, list) else 0
        if not count:
            return [f"{at}  planned"]
        return [f"{at}  planned ({count} line{'s' if count != 1 else ''} skipped: see 'not run')"]
    if event.type == "log":
        return [f"{at}  log      {data.get('level', '')} {data.get('message', '')}"]
    if event.type == "record":
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        assert isinstance(inner, dict)
        what = f" ({inner['event']})" if inner.get("event") else ""
        return [f"{at}  record   {data.get('kind')}{what}: see 'records'"]
    if event.type == "run_submitted":  # engine.distributed: for a worker
        how = f"confirmed by {data['by']}, " if data.get("by") else ""
        return [f"{at}  {how}queued for a worker (queue '{data.get('queue', '-')}')"]
    if event.type == "confirmation_used":
        return [f"{at}  confirmation token accepted"]
    if event.type == "action_started":
        return []  # its time is the finish's minus the duration; retries have their own line
    shown = ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if k != "result")
    return [f"{at}  {event.type}{': ' + shown if shown else ''}"]


def in_flight(events: Iterable[Event]) -> set[int]:
    """Seqs of ``action_started`` events with no outcome after them: the action a running
    run is in, or the one a killed run was cut off in."""
    open_: dict[str, int] = {}
    for event in events:
        if event.action_id is None:
            continue
        if event.type == "action_started":
            open_[event.action_id] = event.seq
        elif event.type in ("action_finished", "action_pending"):
            open_.pop(event.action_id, None)
    return set(open_.values())


def started_line(event: Event, start: float, describe: Describer) -> str:
    """An action started and not settled (yet): its attempt, no outcome journaled."""
    at = f"  +{instant(event.ts) - start:.3f}s"
    attempt = event.data.get("attempt")
    return f"{at}  started  {describe(event.action_id)}  (attempt {attempt}; no outcome journaled)"


def not_run_lines(actions: Iterable[Mapping[str, Any]], finished: set[str]) -> list[str]:
    """Lines with no action event: skipped by the plan (with why), and a count of the rest."""
    lines: list[str] = []
    unreached: dict[str, int] = {}
    for action in actions:
        if action["id"] in finished or action["status"] != "skipped":
            continue
        reason = str(action.get("reason") or "")
        if reason.startswith("not reached"):
            unreached[reason] = unreached.get(reason, 0) + 1
            continue
        lines.append(
            f"  skipped  {action['level']:<9} L{action['line']:<4} {action['text']}  ({reason})"
        )
    for reason, count in unreached.items():
        lines.append(f"  {count} line{'s' if count != 1 else ''} {reason}")
    return lines


def timeline_json(events: Iterable[Event]) -> list[dict[str, Any]]:
    """``inspect --json``'s added ``timeline``: each event's offset and, for an action, its
    duration and attempts (the events themselves stay as they were)."""
    out: list[dict[str, Any]] = []
    start: float | None = None
    for event in events:
        at = instant(event.ts)
        start = at if start is None else start
        entry: dict[str, Any] = {
            "seq": event.seq,
            "offset_s": round(at - start, 6),
            "type": event.type,
            "action_id": event.action_id,
        }
        if event.type == "action_finished":
            result = _result(event)
            entry.update(
                status=result.get("status"),
                duration_ms=result.get("duration_ms"),
                attempts=result.get("attempts"),
                reason=result.get("reason"),
            )
        out.append(entry)
    return out
