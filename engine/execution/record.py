"""The record layer: what a run writes to its journal, in the order resume relies on.

For every action: ``action_started`` (attempt, idempotency key) -> handler ->
``action_retry`` per retried failure -> ``action_finished`` (status, reason, cause,
the state/output keys it changed) or ``action_pending`` (a confirmation gate).
``action_finished`` is deferred: it rides in the same single-statement commit as the
next ``action_started`` (or the run's end), so there is one commit per action and
it still lands before the next handler runs. Every body is written by
``engine.canonical`` (redacted, canonical JSON).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from engine.canonical import altered_keys, canonical, redacted, safe
from engine.errors import ConfirmationRequired
from engine.execution import confirm as confirmation
from engine.execution.redact import redact, redact_text
from engine.execution.result import ActionResult, ActionStatus, RunResult, RunStatus
from engine.model import Action
from engine.storage.base import Store

_SCALARS = frozenset({int, float, str, bool, type(None)})


def crashpoint(event: str, action_id: str | None, target: str | None) -> None:
    """Fault injection for crash tests: ``SOP_CRASH_AFTER=event:action_id`` SIGKILLs this process
    right after that event is committed, or with ``handler_returned:action_id`` right after
    the handler returned and before its outcome is journaled."""
    if target and target == f"{event}:{action_id}":
        os.kill(os.getpid(), signal.SIGKILL)


class Deltas:
    """Which keys of ``state`` / ``output`` changed since the last journaled action.

    Compared by value: each key's fingerprint (``repr`` of a scalar, else its canonical
    JSON) as last journaled.
    """

    def __init__(self, state: dict[str, Any], output: dict[str, Any]) -> None:
        self._watched = tuple(
            (name, values, {k: _fingerprint(v) for k, v in values.items()})
            for name, values in (("state", state), ("output", output))
        )

    def take(self) -> dict[str, Any]:
        """``{"state": changed, "state_removed": [...], "output": ..., ...}`` since last time."""
        out: dict[str, Any] = {}
        for name, values, seen in self._watched:
            if not values and not seen:
                continue
            changed: dict[str, Any] = {}
            items = list(values.items())  # a timed-out handler may still be writing
            skipped = False
            for key, value in items:
                try:
                    text = _fingerprint(value)
                except (RuntimeError, ValueError):  # being mutated by a timed-out handler
                    skipped = True
                    continue
                if seen.get(key) != text:
                    changed[key] = value
                    seen[key] = text
            if changed:
                out[name] = changed
            if skipped or len(seen) > len(items):  # else every seen key is still there
                present = {k for k, _ in items}
                removed = [k for k in seen if k not in present]
                for key in removed:
                    del seen[key]
                if removed:
                    out[f"{name}_removed"] = removed
        return out


def _fingerprint(value: Any) -> str:
    return repr(value) if type(value) in _SCALARS else canonical(value)


class Recorder:
    """Journals one run's events; fires ``SOP_CRASH_AFTER`` once an event is committed."""

    def __init__(
        self, journal: Store, run_id: str, state: dict[str, Any], output: dict[str, Any]
    ) -> None:
        self.journal = journal
        self.run_id = run_id
        self.deltas = Deltas(state, output)
        self._crash_after = os.environ.get("SOP_CRASH_AFTER")
        self._uncommitted: list[tuple[str, str | None]] = []

    def _committed(self, type_: str, action_id: str | None, deferred: bool) -> None:
        """Crash points fire once the event (and the ones deferred with it) is committed."""
        if not self._crash_after:
            return
        self._uncommitted.append((type_, action_id))
        if not deferred:
            for mark in self._uncommitted:
                crashpoint(*mark, self._crash_after)
            self._uncommitted.clear()

    def started(self, action_id: str, attempt: int, key: str) -> None:
        """``action_started``: committed (with the previous action's finish) before the call."""
        raw = {"attempt": attempt, "idempotency_key": key}
        self.journal.append(self.run_id, "action_started", action_id, raw=raw)
        self._committed("action_started", action_id, False)

    def handler_returned(self, action_id: str) -> None:
        """A crash point only: the handler acted, nothing about it is journaled yet."""
        crashpoint("handler_returned", action_id, self._crash_after)

    def retried(self, action_id: str, attempt: int, error: str, delay: float) -> None:
        """``action_retry``: committed before the attempt it announces."""
        data = {"attempt": attempt, "error": error}
        self.journal.append(
            self.run_id, "action_retry", action_id, data, raw={"delay": round(delay, 6)}
        )
        self._committed("action_retry", action_id, False)

    def finished(self, result: ActionResult) -> None:
        """``action_finished``: what resume needs (the rest of the line comes from the plan),
        the state/output keys changed since the last action, and the traceback; redacted."""
        deltas = self.deltas.take()
        data: dict[str, Any] = {name: redacted(values) for name, values in deltas.items()}
        state = deltas.get("state")
        # what redaction altered (resume cannot restore it); untouched: stored as it was
        inexact = altered_keys(state) if state is not None and data["state"] is not state else None
        outcome: dict[str, Any] = {
            "attempts": result.attempts,
            "duration_ms": round(result.duration_ms, 3),
            "reason": redact_text(result.reason) if result.reason else None,
            "status": result.status.value,
        }
        if result.cause:
            outcome["cause"] = redact(result.cause)
        data["result"] = outcome
        if inexact:  # resume cannot restore these (see runner.resume)
            data["redacted_state"] = inexact
        if result.traceback:
            data["traceback"] = redact_text(result.traceback)
        text = safe(data)  # everything in it redacted just above
        self.journal.append_text(self.run_id, "action_finished", result.id, text, defer=True)
        self._committed("action_finished", result.id, True)

    def paused(
        self,
        action: Action,
        exc: ConfirmationRequired,
        op_hash: str,
        attempts: int,
        duration_ms: float,
    ) -> dict[str, Any]:
        """``action_pending`` with its confirmation; the pause as the result shows it
        (with the token: shown once, the journal keeps its hash)."""
        token = confirmation.new_token()
        expires = time.time() + confirmation.ttl_seconds()
        shown = {  # redacted with the rest of the event
            "id": action.id,
            "step": action.step,
            "line": action.line,
            "level": action.level.value,
            "kind": action.kind.value,
            "text": action.text,
            "status": ActionStatus.PENDING.value,
            "reason": exc.message,
            "attempts": attempts,
            "duration_ms": round(duration_ms, 3),
        }
        deltas = self.deltas.take()
        self.journal.add_confirmation(
            self.run_id,
            action.id,
            token_hash=confirmation.token_hash(token),
            operation_hash=op_hash,
            expires_at=expires,
            data={
                "message": exc.message,
                "result": shown,
                "output_keys": sorted(exc.output),
                **deltas,
                "redacted_state": altered_keys(deltas.get("state") or {}),
            },
        )
        crashpoint("action_pending", action.id, self._crash_after)
        return {
            "token": token,
            "operation": redact(dict(exc.operation)),
            "message": redact_text(exc.message),
            "expires_at": confirmation.iso(expires),
            "action_id": action.id,
            "line": action.line,
        }

    def ended(self, result: RunResult) -> None:
        """``run_finished`` / ``run_paused`` / ``run_waiting`` with the whole result, and the
        run's status."""
        status = result.status
        type_ = {RunStatus.PAUSED: "run_paused", RunStatus.WAITING: "run_waiting"}.get(
            status, "run_finished"
        )
        text = canonical({"result": result.stored_dict()})  # redacted by to_dict
        self.journal.append_text(self.run_id, type_, None, text, status=status.value)
        self._committed(type_, None, False)
