"""A person's decisions on a run: reject a paused one, cancel an unfinished one, approve.

Reject: a person declines the pending operation (the refund above the threshold). The
run's confirmation is spent (its token can no longer confirm anything), the pending
action never executes, and the run ends ``rejected`` with who and why journaled.

Cancel: any unfinished run. One that no live process owns (paused, interrupted,
unknown) ends ``cancelled`` here, under its lease; one a live process is executing gets
a ``cancel_requested`` event, and that process stops before its next action
(engine.execution.walk), never in the middle of a side effect.

Approve: the go-ahead of a person logged into ``sop ui``, spent by the pending
confirmation's hash so the person never handles the token (engine.execution.confirm).

Confirm (a token or an approval): a run submitted to the workers is continued by one of
them (``engine.distributed.continuation``), any other in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from engine.canonical import canonical
from engine.errors import SopError, UsageError
from engine.execution import confirm as confirmation
from engine.execution.replay import Replay, read_replay
from engine.execution.result import FINAL, ActionStatus, RunResult, RunStatus
from engine.execution.runner import recorded_result, resume
from engine.storage.base import StartedRun, Store
from engine.storage.journals import JOURNALS
from engine.storage.lease import LeaseHeld

_FINAL = frozenset(status.value for status in FINAL)
_T = TypeVar("_T")


def reject(
    run_id: str, *, reason: str, by: str | None = None, journal: Store | None = None
) -> RunResult:
    """Decline a paused run's pending operation: it never executes; the run ends rejected."""
    if not reason or not reason.strip():
        raise UsageError("reject: give a reason (--reason TEXT)")
    return _with_journal(journal, lambda jr: _end(jr, run_id, "rejected", by, reason.strip()))


def cancel(
    run_id: str, *, reason: str | None = None, by: str | None = None, journal: Store | None = None
) -> RunResult | None:
    """End an unfinished run ``cancelled``; None when a live process is executing it (it
    stops before its next action, seeing the ``cancel_requested`` event journaled here)."""
    why = reason.strip() if reason and reason.strip() else None
    return _with_journal(journal, lambda jr: _cancel(jr, run_id, by, why))


def approve(
    run_id: str,
    *,
    by: str,
    reason: str | None = None,
    registry: Any = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
) -> RunResult:
    """Confirm a paused run for a person authorised by login (``sop ui``), then finish it."""
    return confirm(
        run_id,
        confirmation.Approval(by, reason),
        registry=registry,
        journal=journal,
        services=services,
    )


def confirm(
    run_id: str,
    token: str | confirmation.Approval,
    *,
    by: str | None = None,
    params: Mapping[str, Any] | None = None,
    registry: Any = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
) -> RunResult:
    """The one place a paused run's confirmation is decided: a run submitted to the
    workers goes on there (``engine.distributed.continuation``: the result says
    ``queued``); any other run finishes here, in this process."""
    from engine.distributed.submit import submitted

    def act(jr: Store) -> RunResult:
        queue = submitted(jr, run_id) if jr.run(run_id) is not None else None
        if queue is not None:
            from engine.distributed.continuation import confirm_submitted

            return confirm_submitted(jr, run_id, queue, token, by)
        return resume(
            run_id,
            confirm=token,
            params=params,
            registry=registry,
            journal=jr,
            services=services,
            by=by,
        )

    return _with_journal(journal, act)


def _with_journal(journal: Store | None, act: Callable[[Store], _T]) -> _T:
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    try:
        return act(jr)
    finally:
        if owned:
            JOURNALS.release(jr)


def _known(jr: Store, run_id: str) -> None:
    if jr.run(run_id) is None:
        raise UsageError(f"unknown run '{run_id}' (journal {jr.location})")


def _cancel(jr: Store, run_id: str, by: str | None, reason: str | None) -> RunResult | None:
    _known(jr, run_id)
    try:
        return _end(jr, run_id, "cancelled", by, reason)
    except LeaseHeld:
        started = jr.verified_run(run_id)
        if started.status in _FINAL:
            raise SopError(f"run {run_id} already {started.status}; nothing to cancel") from None
        data: dict[str, Any] = {"by": confirmation.who(by)}
        if reason:
            data["reason"] = reason
        jr.append(run_id, "cancel_requested", data=data)
        return None


def _end(jr: Store, run_id: str, kind: str, by: str | None, reason: str | None) -> RunResult:
    """Reject or cancel a run no live process owns, under its lease (LeaseHeld otherwise)."""
    _known(jr, run_id)
    jr.acquire_lease(run_id)
    try:
        started = jr.verified_run(run_id)
        verb = "reject" if kind == "rejected" else "cancel"
        if started.status in _FINAL:
            raise SopError(f"run {run_id} already {started.status}; nothing to {verb}")
        replay = read_replay(jr, run_id)
        if kind == "rejected" and replay.pending_action is None:
            raise SopError(
                f"run {run_id} is not waiting for confirmation ({started.status}); only a"
                f" paused run can be rejected (stop it with: sop cancel {run_id})"
            )
        person = confirmation.who(by)
        if replay.pending_action is not None:
            _spend_pending(jr, run_id, replay, person, kind, reason)
        result = _final_result(jr, started, replay, kind, person, reason)
        data: dict[str, Any] = {"by": person}
        if reason:
            data["reason"] = reason
        jr.append(run_id, f"run_{kind}", replay.pending_action, data=data, defer=True)
        text = canonical({"result": result.stored_dict()})
        jr.append_text(run_id, "run_finished", None, text, status=result.status.value)
        return result
    finally:
        jr.release_lease(run_id)


def _spend_pending(
    jr: Store, run_id: str, replay: Replay, person: str, kind: str, reason: str | None
) -> None:
    """Use up the pending confirmation so its token confirms nothing any more."""
    token_hash = replay.pending_token_hash
    if token_hash is None:
        return
    if jr.use_confirmation(token_hash, confirmation.decision(person, kind, reason)):
        return
    for event in jr.events(run_id):  # spent already: by an earlier try of this decision?
        if (
            event.type == "confirmation_used"
            and event.data.get("token_hash") == token_hash
            and event.data.get("decision") != kind
        ):
            raise SopError(
                f"run {run_id} was already confirmed by {event.data.get('by')};"
                f" finish it with: sop resume {run_id}"
            )


def _final_result(
    jr: Store,
    started: StartedRun,
    replay: Replay,
    kind: str,
    person: str,
    reason: str | None,
) -> RunResult:
    """The run's last journaled result, ended: the pending line skipped, nothing pending."""
    status = RunStatus(kind)
    result = recorded_result(jr, started.run_id) or RunResult(
        run_id=started.run_id,
        sop=started.sop,
        version=started.version,
        content_hash=started.content_hash or "",
        status=status,
        parent_run_id=started.parent_run_id,
    )
    said = f"{kind} by {person}" + (f": {reason}" if reason else "")
    for action in result.actions:
        if action.status is ActionStatus.PENDING:
            action.status, action.reason = ActionStatus.SKIPPED, said
        elif (action.reason or "").startswith("not reached: waiting for confirmation"):
            action.reason = f"not reached: {said}"
    for key in replay.pending_output_keys:
        result.output.pop(key, None)
    if replay.in_flight is not None:
        result.errors.append(
            f"the outcome of {replay.in_flight} is unknown (the run stopped during it):"
            " check with the provider before acting again"
        )
    result.status, result.pending = status, None
    result.errors.append(said)
    return result
