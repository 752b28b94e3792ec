"""Confirming a submitted run: the go-ahead is journaled here, the run goes on on a worker.

``engine.execution.decide.confirm`` (every way of confirming: ``sop resume --confirm``,
the API, MCP's ``confirm_run``, ``sop ui``'s approve) sends a run that was submitted
here. Under the run's lease the pending confirmation is spent (the same checks as a
local resume: ``engine.execution.confirm.spend``) and ``run_submitted`` is journaled
again (status ``queued``) in the commit that releases the lease; then the continuation
is enqueued. The worker's resume finds the confirmation spent and goes on confirmed. If
the enqueue fails or this process dies first, ``sop resume RUN_ID`` continues the run
(confirmed) anywhere.
"""

from __future__ import annotations

from engine.distributed.submit import QUEUED, SUBMITTED
from engine.errors import SopError
from engine.execution import confirm as confirmation
from engine.execution.replay import read_replay
from engine.execution.result import FINAL, ActionStatus, RunResult, RunStatus
from engine.execution.runner import recorded_result
from engine.storage.base import Store

_FINAL = frozenset(status.value for status in FINAL)


def confirm_submitted(
    journal: Store, run_id: str, queue: str, token: str | confirmation.Approval, by: str | None
) -> RunResult:
    """Spend the pending confirmation of ``run_id`` and enqueue its continuation on
    ``queue``; the run's result as it now stands (``queued``)."""
    journal.acquire_lease(run_id)
    try:
        started = journal.verified_run(run_id)
        if started.status in _FINAL:
            raise SopError(f"run {run_id} already {started.status}; nothing to confirm")
        replay = read_replay(journal, run_id)
        if replay.pending_action is None:
            raise SopError(f"run {run_id} is not waiting for confirmation")
        spent = confirmation.spend(
            journal,
            token,
            run_id=run_id,
            action_id=replay.pending_action,
            token_hash_expected=replay.pending_token_hash,
            by=by,
        )
        person = token.by if isinstance(token, confirmation.Approval) else confirmation.who(by)
        data = {"queue": queue, "confirmed": spent.action_id, "by": person}
        journal.append(run_id, SUBMITTED, data=data, status=QUEUED)  # releases the lease
    finally:
        journal.release_lease(run_id)
    from engine.distributed.queue import enqueue

    enqueue(run_id, queue)
    return _queued(journal, run_id, person)


def _queued(journal: Store, run_id: str, person: str) -> RunResult:
    result = recorded_result(journal, run_id)
    if result is None:
        raise SopError(f"run {run_id} has no recorded result (journal damaged?)")
    for action in result.actions:
        if action.status is ActionStatus.PENDING:
            action.reason = f"confirmed by {person}; a worker continues the run"
    result.status, result.pending = RunStatus.QUEUED, None
    return result
