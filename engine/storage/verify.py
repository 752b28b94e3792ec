"""Journal verification: the hash chain, and every table checked against the chain.

The chained ``events`` are the record; ``runs``, ``records`` and ``confirmations`` are
indexes kept beside them for speed. Everything resume, confirmation and reporting
trusts is either read from chained events or checked here against them, so an edit
to a table is a verification failure like an edit to an event. The functions take
plain rows, so any storage backend can feed them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64

#: An ``events`` row: seq, run_id, ts, type, action_id, data, prev_hash, hash.
EventRow = tuple[int, str, str, str, str | None, str, str, str]

#: Which run status each status-setting event means (``run_finished``: its result's).
_STATUS_OF = {
    "run_started": "running",
    "run_resumed": "running",
    "action_pending": "paused",
    "run_paused": "paused",
    "run_waiting": "waiting",  # for a performer's reports (engine.execution.performer)
    "run_submitted": "queued",  # for a worker (engine.distributed)
}


def row_hash(
    prev_hash: str, seq: int, run_id: str, ts: str, type_: str, action_id: str | None, data: str
) -> str:
    """sha256 over the previous hash and the row's fields, joined by US (0x1f).

    ``data`` is JSON, which escapes control characters, so the separator cannot occur
    inside a field and the joined form is unambiguous.
    """
    fields = (prev_hash, str(seq), run_id, ts, type_, action_id or "", data)
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def chain_problems(rows: Sequence[EventRow], prev_hash: str | None = GENESIS) -> list[str]:
    """Every break in a run of consecutive events; ``prev_hash=None``: trust the first link."""
    problems: list[str] = []
    expected_seq = rows[0][0] if rows and prev_hash is None else 1
    for seq, run_id, ts, type_, action_id, data, stored_prev, stored_hash in rows:
        if seq != expected_seq:
            problems.append(
                f"seq {expected_seq}: missing event(s) {expected_seq}..{seq - 1} (deleted)"
            )
        elif prev_hash is not None and stored_prev != prev_hash:
            problems.append(f"seq {seq}: prev_hash does not match the previous event (edited)")
        if row_hash(stored_prev, seq, run_id, ts, type_, action_id, data) != stored_hash:
            problems.append(f"seq {seq}: hash does not match the row's content (edited)")
        prev_hash, expected_seq = stored_hash, seq + 1
    return problems


@dataclass
class RunFacts:
    """What a run's chained events say, for checking the tables (and for resume)."""

    run_id: str
    started_seq: int | None = None
    started: dict[str, Any] | None = None
    status: str | None = None
    finished_seq: int | None = None
    #: event seq -> (action_id, kind, data, key) of each ``record`` event
    records: dict[int, tuple[str | None, str, Any, str | None]] = field(default_factory=dict)
    #: token hash -> (action_id, operation_hash, expires_at) of each ``action_pending``
    pending: dict[str, tuple[str | None, str, float]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)


_PARSED = frozenset(
    {"run_started", "run_finished", "action_pending", "record", "confirmation_used"}
)


def collect(rows: Iterable[EventRow]) -> dict[str, RunFacts]:
    """Fold events into per-run facts (only the event types the tables mirror are parsed)."""
    out: dict[str, RunFacts] = {}
    for seq, run_id, _ts, type_, action_id, text, _prev, _hash in rows:
        run = out.get(run_id)
        if run is None:
            run = out[run_id] = RunFacts(run_id)
        status = _STATUS_OF.get(type_)
        if status is not None:
            run.status = status
        if type_ not in _PARSED:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue  # the chain check reports the row
        if not isinstance(data, dict):
            continue
        if type_ == "run_started":
            if run.started is None:
                run.started_seq, run.started = seq, data
        elif type_ == "run_finished":
            result = data.get("result")
            run.status = str(result.get("status")) if isinstance(result, dict) else "finished"
            run.finished_seq = seq
        elif type_ == "action_pending":
            expires = data.get("expires_at")
            run.pending[str(data.get("token_hash"))] = (
                action_id,
                str(data.get("operation_hash")),
                float(expires) if isinstance(expires, int | float) else float("nan"),
            )
        elif type_ == "record":
            key = data.get("key")
            run.records[seq] = (
                action_id,
                str(data.get("kind")),
                data.get("data"),
                None if key is None else str(key),
            )
        else:  # confirmation_used
            run.used.add(str(data.get("token_hash")))
    return out


#: runs columns checked against run_started: (column, key in the event)
_RUN_FIELDS = (
    ("sop", "sop"),
    ("sop_path", "sop_path"),
    ("version", "version"),
    ("content_hash", "content_hash"),
    ("parent_run_id", "parent_run_id"),
)


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return object()  # equal to nothing


def runs_problems(facts: dict[str, RunFacts], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """``runs`` rows (run_id, sop, sop_path, version, content_hash, parent_run_id, params,
    handlers, status, first_seq, last_seq) against each run's events."""
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        run_id = str(row[0])
        seen.add(run_id)
        run = facts.get(run_id)
        if run is None or run.started is None:
            problems.append(f"run {run_id}: its run_started event is missing (deleted)")
            continue
        started = run.started
        edited = [
            column
            for index, (column, key) in enumerate(_RUN_FIELDS, 1)
            if row[index] != started.get(key)
        ]
        if _loads(row[6]) != started.get("params"):
            edited.append("params")
        if _loads(row[7]) != started.get("handlers"):
            edited.append("handlers")
        if row[8] != run.status:
            edited.append("status")
        if row[9] is not None and row[9] != run.started_seq:
            edited.append("first_seq")
        if row[10] is not None and row[10] != run.finished_seq:
            edited.append("last_seq")
        if edited:
            problems.append(
                f"run {run_id}: runs.{', runs.'.join(edited)} differ from its chained"
                " events (table edited)"
            )
    for run_id, run in facts.items():
        if run.started is not None and run_id not in seen:
            problems.append(f"run {run_id}: its runs row is missing (deleted)")
    return problems


def records_problems(facts: dict[str, RunFacts], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """``records`` rows (id, run_id, action_id, kind, data, key, event_seq), in id order."""
    problems: list[str] = []
    matched: set[tuple[str, int]] = set()
    last_seq = 0
    for record_id, run_id, action_id, kind, data, key, event_seq in rows:
        run = facts.get(run_id)
        event = run.records.get(event_seq) if run is not None else None
        if event is None:
            problems.append(f"record {record_id}: no chained record event matches it (inserted)")
            continue
        if event != (action_id, kind, _loads(data), key):
            problems.append(
                f"record {record_id}: differs from its chained event {event_seq} (edited)"
            )
        if event_seq < last_seq:
            problems.append(f"record {record_id}: out of order with its events (reordered)")
        last_seq = max(last_seq, event_seq)
        matched.add((run_id, event_seq))
    for run_id, run in facts.items():
        for seq in run.records:
            if (run_id, seq) not in matched:
                problems.append(f"seq {seq}: record of run {run_id} has no records row (deleted)")
    return problems


def confirmations_problems(
    facts: dict[str, RunFacts], rows: Iterable[tuple[Any, ...]]
) -> list[str]:
    """``confirmations`` rows (token_hash, run_id, action_id, operation_hash, expires_at,
    used_at) against the ``action_pending`` / ``confirmation_used`` events."""
    problems: list[str] = []
    seen: set[str] = set()
    for token_hash, run_id, action_id, operation_hash, expires_at, used_at in rows:
        seen.add(token_hash)
        run = facts.get(run_id)
        pending = run.pending.get(token_hash) if run is not None else None
        short = f"confirmation {token_hash[:12]} of run {run_id}"
        if pending is None or run is None:
            problems.append(f"{short}: no chained action_pending event issued it (inserted)")
            continue
        edited = []
        if pending[0] != action_id:
            edited.append("action_id")
        if pending[1] != operation_hash:
            edited.append("operation_hash")
        if pending[2] != expires_at:
            edited.append("expires_at")
        if (used_at is not None) != (token_hash in run.used):
            edited.append("used_at")
        if edited:
            problems.append(
                f"{short}: {', '.join(edited)} differ from its chained events (table edited)"
            )
    for run_id, run in facts.items():
        for token_hash in run.pending:
            if token_hash not in seen:
                problems.append(
                    f"confirmation {token_hash[:12]} of run {run_id}: its row is missing (deleted)"
                )
    return problems


def leases_problems(facts: dict[str, RunFacts], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """``leases`` rows (run_id, pid, host): only for runs the chain knows. (A lease is not
    evidence of anything: it only keeps two processes from running one run at once.)"""
    return [
        f"lease of unknown run {run_id} (pid {pid}@{host}) (inserted)"
        for run_id, pid, host in rows
        if run_id not in facts or facts[run_id].started is None
    ]
