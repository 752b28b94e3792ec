"""The replay layer: what a run's journal says already happened, for resume.

Finished actions are not run again: their recorded results stand, and their deltas
restore ``ctx.state`` / ``ctx.output``. An action that started but whose finish is
not in the journal (``in_flight``) runs again with the same idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.storage.base import Store


@dataclass
class Replay:
    """What the journal says already happened in a run (for resume)."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> status, reason, ...
    state: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    pending_action: str | None = None
    pending_token_hash: str | None = None
    pending_output_keys: list[str] = field(default_factory=list)
    confirmed_operations: set[str] = field(default_factory=set)
    in_flight: str | None = None
    #: state keys whose journaled value redaction altered (cannot be restored exactly)
    inexact_state: set[str] = field(default_factory=set)
    #: a performer's reports per task id, in order (engine.execution.performer)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def recorded(self, action_id: str) -> dict[str, Any] | None:
        """The journaled result of an action that finished with a known outcome."""
        done = self.done.get(action_id)
        return done if done is not None and done.get("status") != "unknown" else None

    def to_reconcile(self) -> frozenset[str]:
        """Actions an earlier call may have acted for, outcome unknown: it was journaled
        as unknown, or the run stopped mid-call."""
        unknown = {aid for aid, done in self.done.items() if done.get("status") == "unknown"}
        if self.in_flight:
            unknown.add(self.in_flight)
        return frozenset(unknown)


def read_replay(journal: Store, run_id: str) -> Replay:
    """What the journal of ``run_id`` says happened, event by event."""
    replay = Replay()
    pending_hashes: dict[str, str] = {}  # token hash -> operation hash
    for event in journal.events(run_id):
        data = event.data
        if event.type == "action_started":
            replay.in_flight = event.action_id
        elif event.type in ("action_finished", "action_pending"):
            for name, target in (("state", replay.state), ("output", replay.output)):
                target.update(data.get(name) or {})
                for key in data.get(f"{name}_removed") or []:
                    target.pop(key, None)
            replay.inexact_state.difference_update(data.get("state") or ())
            replay.inexact_state.difference_update(data.get("state_removed") or ())
            replay.inexact_state.update(data.get("redacted_state") or ())
            replay.in_flight = None
            if event.type == "action_finished" and event.action_id is not None:
                replay.done[event.action_id] = data["result"]
                if replay.pending_action == event.action_id:
                    replay.pending_action = None
            else:
                replay.pending_action = event.action_id
                replay.pending_token_hash = data.get("token_hash")
                replay.pending_output_keys = list(data.get("output_keys") or [])
                pending_hashes[str(data.get("token_hash"))] = str(data.get("operation_hash"))
        elif event.type == "task_reported" and event.action_id is not None:
            replay.reports.setdefault(event.action_id, []).append(dict(data))
        elif event.type == "confirmation_used":
            op = pending_hashes.get(str(data.get("token_hash")))
            if op:
                replay.confirmed_operations.add(op)
    return replay
