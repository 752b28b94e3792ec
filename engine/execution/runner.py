"""Run and resume SOPs: the public entry points of execution.

``run`` plans a SOP (refusing one with an unbound required line), journals the run's
start and walks the plan; ``resume`` continues a paused or interrupted run from its
journal. The layers underneath, each in its own module:

- ``walk``: every line in order, each settled before the next; pause, stop, result;
- ``step``: one action, replay -> retry -> attempt -> record;
- ``watchdog``: the handler call's deadline (the walk runs in a worker thread);
- ``record``: the journal events of a run, in the order resume relies on;
- ``replay``: what the journal says already happened;
- ``result``: ActionResult, RunResult and their statuses.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.binding.planner import Binding, Plan, plan
from engine.binding.registry import Registry, default_registry
from engine.canonical import canonical
from engine.errors import PlanRefused, SopError, UsageError
from engine.execution import confirm as confirmation
from engine.execution.cause import sop_message
from engine.execution.context import Services
from engine.execution.performer import PLAN_EVENT, run_performer
from engine.execution.redact import redact, redact_text
from engine.execution.replay import read_replay
from engine.execution.result import (
    FINAL,
    RESULT_SCHEMA,
    ActionResult,
    ActionStatus,
    RunResult,
    RunStatus,
)
from engine.execution.walk import DEFAULT_ACTION_TIMEOUT, Walk, action_timeout_default
from engine.language.catalog import load
from engine.language.parser import parse
from engine.model import Sop
from engine.storage.base import Store
from engine.storage.journal import IDEMPOTENCY_PARAM, StartedRun, params_match
from engine.storage.journals import JOURNALS
from engine.storage.lease import Lease, may_take_over


def _unbound_line(binding: Binding, sop: Sop) -> str:
    action = binding.action
    keyword = action.keyword or action.level.value
    return f"{sop.path or sop.name}:{action.line}: {keyword} {action.text}"


def _load(sop: Sop | str) -> Sop:
    if isinstance(sop, Sop):
        return sop
    return load(sop)


def _registry_factories(registry: Registry | None) -> dict[str, Callable[..., Any]]:
    if registry is None:
        registry = default_registry
    return registry.services()


def _services(registry: Registry | None, services: Mapping[str, Any] | None) -> Services:
    if isinstance(services, Services):
        return services
    return Services(services, _registry_factories(registry))


def _plan(
    sop: Sop, params: Mapping[str, Any], registry: Registry | None, performer: str | None = None
) -> Plan:
    planned = plan(sop, params, registry=registry, performer=performer)
    if not planned.ok:
        raise PlanRefused([_unbound_line(b, sop) for b in planned.unbound])
    return planned


#: the checks every run passes before a side effect (``engine.submit`` uses them too)
checked_plan = _plan


def run(
    sop: Sop | str,
    params: Mapping[str, Any],
    *,
    registry: Registry | None = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
    confirm: str | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    handlers: list[str] | None = None,
    by: str | None = None,
    performer: str | None = None,
) -> RunResult:
    """Plan, refuse if a required line is unbound, then execute guards and steps in order.

    ``performer`` (agent|person) performs the unbound lines of an SOP that names no
    ``**Performer**``; the run then waits (RunStatus.WAITING) for their reports
    (``engine.report``).

    With ``confirm``: the token names a paused run of this SOP with these parameters;
    that run resumes (see ``resume``; ``by`` is who confirms, default the OS user).
    ``handlers`` (module names) are recorded so ``sop resume`` can import them again.
    ``run_id``/``parent_run_id`` are for child runs.
    """
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    rid: str | None = None
    try:
        loaded = _load(sop)
        if confirm is not None:
            return _run_confirmed(loaded, params, confirm, jr, registry, services, by)
        planned = _plan(loaded, params, registry, performer)
        earlier = _earlier_run(jr, loaded.name, planned.params)
        if earlier is not None:
            return earlier
        rid = run_id or new_run_id()
        start_journaled(jr, rid, loaded, planned, handlers, performer, parent_run_id)
        walk = Walk(
            plan=planned,
            run_id=rid,
            journal=jr,
            registry=registry,
            services=_services(registry, services),
            parent_run_id=parent_run_id,
            child_runner=child_run,
        )
        return walk.execute()
    finally:
        try:
            if rid is not None:
                jr.release_lease(rid)  # a run stopped by an exception: resumable at once
        finally:
            if owned:
                JOURNALS.release(jr)


def start_journaled(
    jr: Store,
    rid: str,
    loaded: Sop,
    planned: Plan,
    handlers: Sequence[str] | None,
    performer: str | None,
    parent_run_id: str | None = None,
) -> None:
    """Journal a new run and its plan (deferred: they commit with the run's next event, and
    the run's lease rides with that first commit, released by its end)."""
    jr.start_run(
        rid,
        sop=loaded.name,
        sop_path=os.path.abspath(loaded.path) if loaded.path else None,
        version=loaded.version,
        content_hash=loaded.content_hash,
        params=planned.params,
        handlers=list(handlers or []),
        parent_run_id=parent_run_id,
    )
    skipped = [
        {"id": b.action.id, "reason": b.reason} for b in planned.bindings if b.status != "bound"
    ]
    jr.append(rid, PLAN_EVENT, data={"skipped": skipped, "performer": performer}, defer=True)


def _run_confirmed(
    sop: Sop,
    params: Mapping[str, Any],
    token: str,
    journal: Store,
    registry: Registry | None,
    services: Mapping[str, Any] | None,
    by: str | None,
) -> RunResult:
    found = confirmation.lookup(journal, token)
    started = journal.verified_run(found.run_id)
    if started.sop != sop.name:
        raise SopError(
            f"confirmation token does not match a run of '{sop.name}'"
            f" (it belongs to a run of '{started.sop}')"
        )
    for key, value in params.items():
        if canonical(redact(value)) != canonical(started.params.get(key)):
            raise SopError(
                "confirmation token does not match these parameters:"
                f" {key} differs from run {started.run_id}"
            )
    exact = {key: params[key] for key in started.redacted_params if key in params}
    return resume(
        started.run_id,
        confirm=token,
        params=exact or None,
        registry=registry,
        journal=journal,
        services=services,
        by=by,
    )


def _earlier_run(journal: Store, sop: str, params: Mapping[str, Any]) -> RunResult | None:
    """What an earlier run with the caller's idempotency key means for this one.

    As Stripe does with its keys, for good: the same key with the same parameters after a
    finished run replays that run's recorded result (nothing runs again, whatever time
    passed); with other parameters it is refused; while the earlier run is not over
    (unknown, paused, running or interrupted) it is refused and named, since running
    again would act twice. A generated key (the SOP's default) never matches. Two runs
    started at the same instant can both pass; the provider's idempotency is the guard then.
    """
    key = params.get(IDEMPOTENCY_PARAM)
    if not isinstance(key, str) or not key:
        return None
    # the journal may hold the parameter redacted
    for row in journal.runs_with_idempotency_key(sop, (key, redact_text(key))):
        command = f"sop resume {row.run_id}"
        if row.status in _FINAL_VALUES:
            started = journal.started(row.run_id)
            recorded = recorded_result(journal, row.run_id)
            same = started is not None and started.params_sha256 is not None
            if not (same and started is not None and params_match(started, params)):
                raise SopError(
                    f"refusing to run {sop}: run {row.run_id} ({row.status}) used this"
                    f" {IDEMPOTENCY_PARAM} with other parameters; a new operation needs a new"
                    f" {IDEMPOTENCY_PARAM}"
                )
            if recorded is None:
                raise SopError(f"run {row.run_id} has no recorded result (journal damaged?)")
            recorded.warnings.append(
                f"replayed: run {row.run_id} already ran with this {IDEMPOTENCY_PARAM} and"
                " these parameters; nothing was done again"
            )
            return recorded
        if row.status == RunStatus.UNKNOWN.value:
            state = "has an unknown outcome"
        elif row.status == RunStatus.PAUSED.value:
            state, command = "is waiting for confirmation", command + " --confirm TOKEN"
        elif row.status == RunStatus.WAITING.value:
            state, command = "is waiting for its performer's reports", f"sop report {row.run_id}"
        elif row.status == RunStatus.QUEUED.value:  # submitted: a worker will take it
            state, command = "is queued for a worker", f"sop inspect {row.run_id} --follow"
        elif (owner := journal.lease(row.run_id)) and not may_take_over(owner, time.time()):
            state, command = f"is still running ({owner.owner()})", f"sop inspect {row.run_id}"
        else:
            state = "was interrupted"
        raise SopError(
            f"refusing to run {sop}: run {row.run_id} with the same {IDEMPOTENCY_PARAM} {state};"
            f" continue it with: {command}"
        )
    return None


_FINAL_VALUES = frozenset(status.value for status in FINAL)


def new_run_id() -> str:
    """A random hex id that redaction leaves alone (no long, Luhn-passing digit run)."""
    while True:
        rid = uuid.uuid4().hex
        if redact_text(rid) == rid:
            return rid


def _load_for_resume(sop_name: str, sop_path: str | None, content_hash: str | None) -> Sop:
    sop: Sop | None = None
    if sop_path and Path(sop_path).is_file():
        sop = parse(Path(sop_path).read_bytes(), path=sop_path)
    if sop is None or (content_hash and sop.content_hash != content_hash):
        try:
            candidate = _load(sop_name)
        except UsageError:
            if sop is None:
                raise
        else:
            if sop is None or candidate.content_hash == content_hash:
                sop = candidate
    if content_hash and sop.content_hash != content_hash:
        raise SopError(
            f"SOP '{sop_name}' changed since the run started ({sop.path or sop_name}); "
            "it cannot be resumed against different text"
        )
    return sop


def sop_for_resume(started: StartedRun) -> Sop:
    """The SOP text a run started with (by its recorded path, else by name); SopError when
    it changed since."""
    return _load_for_resume(started.sop, started.sop_path, started.content_hash)


def _resume_params(started: StartedRun, supplied: Mapping[str, Any] | None) -> dict[str, Any]:
    """Exactly the parameters the run started with, or SopError saying why not.

    The journal keeps them redacted; when redaction altered any, the caller must supply
    those values again, and the whole set must hash to what the run recorded.
    """
    run_id, stored = started.run_id, dict(started.params)
    how = (
        f"resume with the original values: sop resume {run_id} -p NAME=VALUE (or --params-file"
        " FILE), or engine.resume(run_id, params={...})"
    )
    if started.params_sha256 is None:  # journaled before parameter hashes
        masked = sorted(k for k, v in stored.items() if "*" in canonical(v))
        if masked or supplied:
            raise SopError(
                f"run {run_id} was journaled without a parameter hash and"
                f" {', '.join(masked) or 'its parameters'} may have been altered by redaction;"
                " it cannot be resumed safely (start a new run)"
            )
        return stored
    if not started.redacted_params and not supplied:
        return stored
    supplied = dict(supplied or {})
    missing = [name for name in started.redacted_params if name not in supplied]
    if missing:
        raise SopError(
            f"run {run_id} cannot resume with its journaled parameters: redaction altered"
            f" {', '.join(missing)} (nothing ran); {how}"
        )
    merged = {**stored, **supplied}
    if not params_match(started, merged):
        raise SopError(
            f"run {run_id}: the parameters supplied ({', '.join(sorted(supplied))}) are not"
            " the ones it started with (their seal differs); refusing to resume (nothing ran)"
        )
    return merged


def resume_plan(
    started: StartedRun,
    journal: Store,
    registry: Registry | None,
    params: Mapping[str, Any] | None = None,
) -> Plan:
    """The plan a recorded run goes on with: its SOP text, exact parameters, performer."""
    sop = sop_for_resume(started)
    exact = _resume_params(started, params)
    return _plan(sop, exact, registry, run_performer(journal, started.run_id))


def resume(
    run_id: str,
    *,
    confirm: str | confirmation.Approval | None = None,
    params: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
    by: str | None = None,
) -> RunResult:
    """Continue a paused (with ``confirm``), waiting or interrupted run from its journal.

    ``confirm``: the token, or an ``Approval`` from a person logged into ``sop ui``;
    ``by``: who confirms with a token (default the OS user); both are journaled.

    The run's lease is taken first (another live owner: LeaseHeld, nothing done) and
    released when the run ends, pauses or stops. ``params``: the exact values of the
    parameters redaction altered in the journal (checked against the recorded hash).
    """
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    try:
        if jr.run(run_id) is None:
            raise UsageError(f"unknown run '{run_id}' (journal {jr.location})")
        previous = jr.acquire_lease(run_id)
        try:
            return _resume_owned(run_id, confirm, params, previous, registry, jr, services, by)
        finally:
            jr.release_lease(run_id)
    finally:
        if owned:
            JOURNALS.release(jr)


def _resume_owned(
    run_id: str,
    confirm: str | confirmation.Approval | None,
    params: Mapping[str, Any] | None,
    previous: Lease | None,
    registry: Registry | None,
    jr: Store,
    services: Mapping[str, Any] | None,
    by: str | None,
) -> RunResult:
    """``resume`` once this process holds the run's lease."""
    started = jr.verified_run(run_id)  # everything below acts on chained events only
    if started.status in (RunStatus.REJECTED.value, RunStatus.CANCELLED.value):
        raise SopError(f"run {run_id} was {started.status}; it cannot be resumed (start a new run)")
    if isinstance(confirm, str):
        found = confirmation.lookup(jr, confirm)
        if found.run_id != run_id:
            raise SopError(f"confirmation token does not match run {run_id}")
        if found.used_at is not None:
            raise SopError("confirmation token already used")
    if started.status in _FINAL_VALUES:
        raise SopError(f"run {run_id} already {started.status}; nothing to resume")
    planned = resume_plan(started, jr, registry, params)
    replay = read_replay(jr, run_id)
    if replay.inexact_state:
        raise SopError(
            f"run {run_id} cannot resume exactly: redaction altered"
            f" state {', '.join(sorted(replay.inexact_state))} in the journal, and its handlers"
            f" would act on the altered values; refusing (nothing ran; `sop inspect {run_id}`"
            " shows what it did)"
        )
    confirmed = False
    if replay.pending_action is not None and confirm is None:
        # confirmed already: a submitted run's continuation, or a crash after confirming
        confirmed = confirmation.confirmed(jr, run_id, replay.pending_token_hash)
    if replay.pending_action is not None and not confirmed:
        if confirm is None:
            raise SopError(
                f"run {run_id} is waiting for confirmation; resume it with --confirm TOKEN"
            )
        confirmation.spend(
            jr,
            confirm,
            run_id=run_id,
            action_id=replay.pending_action,
            token_hash_expected=replay.pending_token_hash,
            by=by,
        )
        replay = read_replay(jr, run_id)  # now includes the spent token's operation
        confirmed = True
    elif confirm is not None:
        raise SopError(f"run {run_id} is not waiting for confirmation")
    claim: dict[str, Any] = {
        "confirmed": confirmed,
        "in_flight": replay.in_flight,
        "done": len(replay.done),
    }
    if previous is not None:
        claim["took_over"] = previous.owner()
    jr.claim(run_id, "run_resumed", claim)
    walk = Walk(
        plan=planned,
        run_id=run_id,
        journal=jr,
        registry=registry,
        services=_services(registry, services),
        parent_run_id=started.parent_run_id,
        child_runner=child_run,
        replay=replay,
        confirmed=confirmed,
    )
    return walk.execute()


def resume_held(
    run_id: str,
    *,
    params: Mapping[str, Any] | None,
    registry: Registry | None,
    journal: Store,
    services: Mapping[str, Any] | None,
) -> RunResult:
    """``resume`` by a caller that already holds the run's lease (a performer's report,
    journaled under it: no other process can act between the report and the walk)."""
    return _resume_owned(run_id, None, params, None, registry, journal, services, None)


def recorded_result(journal: Store, run_id: str) -> RunResult | None:
    """The result a finished or paused run journaled last (without the confirmation token)."""
    last: dict[str, Any] | None = None
    for event in journal.events(run_id):
        if event.type in ("run_finished", "run_paused", "run_waiting"):
            last = event.data.get("result")
    return RunResult.from_dict(last) if last else None


def child_run(
    sop: str,
    params: Mapping[str, Any],
    *,
    run_id: str,
    parent_run_id: str,
    registry: Registry | None,
    journal: Store,
    services: Mapping[str, Any] | None,
) -> RunResult:
    """A child run with a derived id: start it, or return/resume the one already journaled."""
    row = journal.run(run_id)
    if row is None:
        return run(
            sop,
            params,
            registry=registry,
            journal=journal,
            services=services,
            run_id=run_id,
            parent_run_id=parent_run_id,
        )
    if row.status in _FINAL_VALUES or row.status in (
        RunStatus.PAUSED.value,
        RunStatus.WAITING.value,
    ):
        recorded = recorded_result(journal, run_id)
        if recorded is not None:
            return recorded
    return resume(run_id, registry=registry, journal=journal, services=services)


__all__ = [
    "DEFAULT_ACTION_TIMEOUT",
    "RESULT_SCHEMA",
    "ActionResult",
    "ActionStatus",
    "RunResult",
    "RunStatus",
    "action_timeout_default",
    "checked_plan",
    "child_run",
    "recorded_result",
    "resume",
    "resume_held",
    "resume_plan",
    "run",
    "sop_for_resume",
    "sop_message",
]
