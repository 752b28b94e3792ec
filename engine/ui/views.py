"""What each page of ``sop ui`` shows, read from the catalog and the journal.

Plain data for the templates. Nothing here ever holds a confirmation token: the journal
keeps only its hash, and that is dropped too before anything is shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SopError, UsageError
from engine.execution.replay import read_replay
from engine.execution.run_graph import action_statuses
from engine.execution.runner import recorded_result, sop_for_resume
from engine.language.catalog import CatalogEntry, entries
from engine.storage.base import Event, RunRow, Store
from engine.storage.run_status import current
from engine.ui.graph import Drawn, draw

if TYPE_CHECKING:
    from engine.distributed.health import Health

_HIDDEN = frozenset({"token", "token_hash", "traceback"})
STATUSES = (
    "queued",
    "running",
    "paused",
    "unknown",
    "succeeded",
    "failed",
    "rejected",
    "cancelled",
)


def health(location: str | Path) -> Health | None:
    """The queue and the workers (``engine.distributed.health``); None without SOP_BROKER."""
    from engine.distributed.settings import broker_configured

    if not broker_configured():
        return None
    from engine.distributed.health import health as read

    return read(location)


def sops() -> list[CatalogEntry]:
    return entries()


def runs(journal: Store | None, sop: str | None, status: str | None) -> list[RunRow]:
    if journal is None:
        return []
    return [
        row
        for row in current(journal, journal.runs())  # a run whose process is gone: interrupted
        if (not sop or row.sop == sop) and (not status or row.status == status)
    ]


@dataclass
class Moment:
    """One journal event on a run's timeline."""

    seq: int
    ts: str
    after: str  # since the run's first event
    type: str
    action_id: str | None
    detail: str


@dataclass
class RunPage:
    row: RunRow
    params: dict[str, Any]
    result: dict[str, Any] | None
    timeline: list[Moment] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    graph: Drawn | None = None  # the SOP text the run started with (None: changed since)


def _seconds(first: str, ts: str) -> str:
    try:
        delta = (datetime.fromisoformat(ts) - datetime.fromisoformat(first)).total_seconds()
    except ValueError:
        return ""
    return f"+{delta:.3f}s"


def _detail(event: Event) -> str:
    data = {k: v for k, v in event.data.items() if k not in _HIDDEN}
    if event.type in ("run_finished", "run_paused") and isinstance(data.get("result"), dict):
        final = data.pop("result")
        data.update(status=final.get("status"), errors=final.get("errors"))
    shown = json.dumps(data, default=str, sort_keys=True)
    return shown if len(shown) <= 300 else shown[:297] + "..."


def run_page(journal: Store, row: RunRow) -> RunPage:
    events = journal.events(row.run_id)
    started = journal.started(row.run_id)
    result = recorded_result(journal, row.run_id)
    shown = result.to_dict(validate=False) if result else None
    if shown is not None and shown.get("pending"):
        shown["pending"] = {k: v for k, v in shown["pending"].items() if k not in _HIDDEN}
    first = events[0].ts if events else row.started
    page = RunPage(row, started.params if started else row.params, shown)
    try:
        statuses = action_statuses(journal, row.run_id)
        page.graph = draw(sop_for_resume(started), statuses) if started else None
    except (SopError, UsageError):  # the SOP changed or vanished since the run
        page.graph = None
    for event in events:
        page.timeline.append(
            Moment(
                event.seq,
                event.ts,
                _seconds(first, event.ts),
                event.type,
                event.action_id,
                _detail(event),
            )
        )
        if event.type in ("confirmation_used", "cancel_requested") and "by" in event.data:
            page.decisions.append(
                {
                    "ts": event.ts,
                    "by": event.data.get("by"),
                    "decision": event.data.get("decision", "cancel requested"),
                    "reason": event.data.get("reason"),
                }
            )
    return page


@dataclass
class Waiting:
    """A paused run in the approvals inbox."""

    row: RunRow
    message: str | None
    operation: dict[str, Any]
    expires_at: str | None
    line: int | None


def inbox(journal: Store | None) -> list[Waiting]:
    if journal is None:
        return []
    out: list[Waiting] = []
    for row in journal.runs():
        if row.status != "paused" or read_replay(journal, row.run_id).pending_action is None:
            continue
        result = recorded_result(journal, row.run_id)
        pending = (result.pending if result else None) or {}
        out.append(
            Waiting(
                row,
                pending.get("message"),
                {k: v for k, v in (pending.get("operation") or {}).items() if k not in _HIDDEN},
                pending.get("expires_at"),
                pending.get("line"),
            )
        )
    return out
