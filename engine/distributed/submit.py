"""``engine.submit``: journal a run for the workers and enqueue its id; return at once.

Everything ``engine.run`` checks before a side effect is checked here first, by the same
code (lint errors, parameters, prerequisites, bindings: ``runner.checked_plan``), so a bad
parameter or an unbound MUST is the same one-line error and nothing is journaled or
enqueued. Then one commit journals the run as ``engine.run`` would start it (``runs``
row, ``run_started`` with the parameters, the plan) plus ``run_submitted`` (status
``queued``, no lease), and only then is the id enqueued: a worker never sees a run the
journal does not hold, and acts on the journal's parameters only.

Refused, nothing written:
- a SQLite journal: it is a file on one machine, so a worker elsewhere (or started in
  another folder) would not find the run; workers share a PostgreSQL journal;
- parameters that redaction would alter in the journal (a card number in a description):
  a worker could not resume with the exact values (``sop run`` here can).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.canonical import canonical
from engine.distributed.settings import DEFAULT_QUEUE
from engine.errors import SopError, UsageError
from engine.execution.redact import redact, redact_text
from engine.storage.base import Store
from engine.storage.journal import IDEMPOTENCY_PARAM, params_match
from engine.storage.journals import JOURNALS
from engine.storage.location import database_url

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.model import Sop

SUBMITTED = "run_submitted"
QUEUED = "queued"


def submit(
    sop: Sop | str,
    params: Mapping[str, Any],
    *,
    registry: Registry | None = None,
    journal: Store | None = None,
    queue: str | None = None,
    handlers: list[str] | None = None,
    performer: str | None = None,
) -> str:
    """Journal a run of ``sop`` with ``params`` and enqueue it for ``sop worker``; its id.

    Refuses exactly as ``engine.run`` does before anything runs (ParameterError,
    PlanRefused, ...), and also a SQLite journal or parameters redaction would alter. An
    ``idempotency_key`` already used with the same parameters returns that run's id.
    """
    from engine.execution.runner import checked_plan, new_run_id, start_journaled
    from engine.language.catalog import load

    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    try:
        loaded = load(sop) if isinstance(sop, str) else sop
        planned = checked_plan(loaded, params, registry, performer)
        _shared(jr)
        _exact(planned.params)
        earlier = _earlier(jr, loaded.name, planned.params)
        if earlier is not None:
            return earlier
        where = queue or DEFAULT_QUEUE
        rid = new_run_id()
        start_journaled(jr, rid, loaded, planned, handlers, performer)
        # one commit: the run, its plan and "queued"; the lease the start took is released
        jr.append(rid, SUBMITTED, data={"queue": where}, status=QUEUED)
        from engine.distributed.queue import enqueue

        enqueue(rid, where)
        return rid
    finally:
        if owned:
            JOURNALS.release(jr)


def _shared(journal: Store) -> None:
    where = journal.location
    if database_url(where) is None:
        raise UsageError(
            f"--submit needs a journal the workers share: {where} is a SQLite file on"
            " this machine; set SOP_JOURNAL=postgresql://... (nothing was enqueued)"
        )


def _exact(params: Mapping[str, Any]) -> None:
    safe = redact(dict(params))
    altered = sorted(
        redact_text(name)
        for name, value in params.items()
        if name not in safe or canonical(safe[name]) != canonical(value)
    )
    if altered:
        raise SopError(
            f"cannot submit: redaction would alter {', '.join(altered)} in the journal, and a"
            " worker runs with the journal's parameters; run it here with sop run (nothing"
            " was enqueued)"
        )


def _earlier(journal: Store, sop: str, params: Mapping[str, Any]) -> str | None:
    """The run an ``idempotency_key`` was already submitted (or run) with: its id when the
    parameters are the same, a refusal when they differ."""
    key = params.get(IDEMPOTENCY_PARAM)
    if not isinstance(key, str) or not key:
        return None
    for row in journal.runs_with_idempotency_key(sop, (key, redact_text(key))):
        started = journal.started(row.run_id)
        if started is not None and started.params_sha256 and params_match(started, params):
            return row.run_id
        raise SopError(
            f"refusing to submit {sop}: run {row.run_id} ({row.status}) used this"
            f" {IDEMPOTENCY_PARAM} with other parameters; a new operation needs a new"
            f" {IDEMPOTENCY_PARAM}"
        )
    return None


def submitted(journal: Store, run_id: str) -> str | None:
    """The queue ``run_id`` was submitted to (None: it runs where it was started)."""
    for event in journal.events(run_id):
        if event.type == SUBMITTED:
            return str(event.data.get("queue") or DEFAULT_QUEUE)
    return None
