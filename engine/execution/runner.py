"""Execute a Plan: statuses, retries, timeouts, confirmation gates, journal, resume.

Order of events for every action, each committed before the next side effect:
``action_started`` (attempt, idempotency key) -> handler -> ``action_retry`` per
retried failure -> ``action_finished`` (status, reason, the state/output keys it
changed) or ``action_pending`` (a confirmation gate). ``action_finished`` rides in
the same single-statement commit as the next ``action_started`` (or the run's end),
so there is one commit per action and it still lands before the next handler runs.
Resuming replays the journal: finished actions are not re-run (their deltas
restore ``ctx.state``/``ctx.output``); an action that started but whose finish is
not in the journal runs again with the same idempotency key.

Handlers run in a worker thread (the run's loop itself runs there, so there is
no thread hand-off per action; parked workers are reused, see engine.execution.workers)
while the calling thread watches the current attempt's deadline
(HandlerDef.timeout, else SOP_ACTION_TIMEOUT_SECONDS, default 120; 0 = none).
Python cannot kill a thread: a handler that times out keeps running in the
background until it returns, and its late writes to ``ctx.state`` /
``ctx.output`` may still land; the run has already failed that action ("timed
out after N s") and goes on in another worker thread. The abandoned worker
journals nothing more for the run.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.errors import (
    ConfirmationRequired,
    NotApplicable,
    OutcomeUnknown,
    PlanRefused,
    SopError,
    SopFailure,
    UsageError,
)
from engine.execution import cause as causes
from engine.execution import confirm as confirmation
from engine.execution import retry, workers
from engine.execution.context import RunContext, Services, idempotency_key, run_logger
from engine.execution.redact import redact, redact_text
from engine.execution.settings import seconds
from engine.model import Action, ActionKind, Sop, Step, jsonable
from engine.storage.base import Store
from engine.storage.journal import (
    IDEMPOTENCY_PARAM,
    StartedRun,
    altered_keys,
    canonical,
    params_match,
    redacted_json,
)
from engine.storage.journals import JOURNALS
from engine.storage.lease import Lease, may_take_over

if TYPE_CHECKING:
    from engine.binding.planner import Binding, Plan
    from engine.binding.registry import Registry

DEFAULT_ACTION_TIMEOUT = 120.0
RESULT_SCHEMA = "run-result.schema.json"


class ActionStatus(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # unbound optional line, off the selected path, not applicable, not reached
    PENDING = "pending"  # waiting for a person's confirmation
    UNKNOWN = "unknown"  # a side effect may have happened: resume reconciles it


class RunStatus(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PAUSED = "paused"  # awaiting confirmation
    RUNNING = "running"
    UNKNOWN = "unknown"  # an action's outcome is unknown: resume reconciles it


@dataclass
class ActionResult:
    """One line of the SOP and what became of it in this run."""

    id: str
    line: int
    level: str
    kind: str
    text: str
    status: ActionStatus
    reason: str | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    step: int | None = None
    handler: str | None = None
    #: why it failed (or is unknown): exception type, message, HTTP status, file:line
    cause: dict[str, Any] | None = None
    #: the redacted traceback (journal and --debug only, never in to_dict)
    traceback: str | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "step": self.step,
            "line": self.line,
            "level": self.level,
            "kind": self.kind,
            "text": self.text,
            "status": self.status.value,
            "reason": redact_text(self.reason) if self.reason else None,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
            "handler": self.handler,
            "cause": redact(self.cause) if self.cause else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionResult:
        return cls(
            id=data["id"],
            line=data["line"],
            level=data["level"],
            kind=data["kind"],
            text=data["text"],
            status=ActionStatus(data["status"]),
            reason=data.get("reason"),
            attempts=data.get("attempts", 0),
            duration_ms=data.get("duration_ms", 0.0),
            step=data.get("step"),
            handler=data.get("handler"),
            cause=data.get("cause"),
        )


@dataclass
class RunResult:
    """What a run did: status, the SOP's output fields, every line's fate, errors."""

    run_id: str
    sop: str
    version: str | None
    content_hash: str
    status: RunStatus
    output: dict[str, Any] = field(default_factory=dict)
    actions: list[ActionResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    parent_run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    def to_dict(self, *, validate: bool = True) -> dict[str, Any]:
        """JSON-ready and redacted (except the confirmation token the caller needs)."""
        pending = None
        if self.pending is not None:
            pending = dict(redact({k: v for k, v in self.pending.items() if k != "token"}))
            pending["token"] = self.pending.get("token")
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "sop": self.sop,
            "version": self.version,
            "content_hash": self.content_hash,
            "status": self.status.value,
            "output": jsonable(redact(self.output)),
            "actions": [a.to_dict() for a in self.actions],
            "errors": [redact_text(e) for e in self.errors],
            "warnings": [redact_text(w) for w in self.warnings],
            "pending": pending,
            "parent_run_id": self.parent_run_id,
        }
        if validate:
            _validator().validate(data)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(
            run_id=data["run_id"],
            sop=data["sop"],
            version=data.get("version"),
            content_hash=data.get("content_hash", ""),
            status=RunStatus(data["status"]),
            output=dict(data.get("output") or {}),
            actions=[ActionResult.from_dict(a) for a in data.get("actions", [])],
            errors=list(data.get("errors", [])),
            warnings=list(data.get("warnings", [])),
            pending=data.get("pending"),
            parent_run_id=data.get("parent_run_id"),
        )


@cache
def _validator() -> Any:
    import jsonschema

    from engine.language.resources import load_schema

    schema = load_schema(RESULT_SCHEMA)
    return jsonschema.Draft202012Validator(schema)


def action_timeout_default() -> float:
    return seconds("SOP_ACTION_TIMEOUT_SECONDS", DEFAULT_ACTION_TIMEOUT, zero="no timeout")


def _crashpoint(event: str, action_id: str | None, target: str | None) -> None:
    """Fault injection for crash tests: ``SOP_CRASH_AFTER=event:action_id`` SIGKILLs this process
    right after that event is committed, or with ``handler_returned:action_id`` right after
    the handler returned and before its outcome is journaled."""
    if target and target == f"{event}:{action_id}":
        os.kill(os.getpid(), signal.SIGKILL)


# -- messages -------------------------------------------------------------------------


def _step_of(sop: Sop, action: Action) -> Step | None:
    if action.step is None:
        return None
    for step in sop.steps:
        if step.number == action.step:
            return step
    return None


def sop_message(exc: BaseException, sop: Sop, step: Step | None) -> str:
    """The SOP's words for a failure: the matching Error Handling rule's quoted message,
    else its response; the raising action's step first, then any step. Otherwise the
    exception's own message (after its type, unless it is the engine's own SopError)."""
    if isinstance(exc, SopFailure):
        steps = [step] if step is not None else []
        steps += [s for s in sop.steps if s is not step]
        for candidate in steps:
            for rule in candidate.error_rules:
                if retry.conditions_match(exc.condition, rule.condition):
                    return rule.message or rule.response
        return exc.message
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    # the engine's own errors are whole sentences; anything else is a bug: name its type
    return first if isinstance(exc, SopError) else f"{type(exc).__name__}: {first}"


def _level(action: Action) -> str:
    return action.level.value


def _unbound_line(binding: Binding, sop: Sop) -> str:
    action = binding.action
    keyword = action.keyword or _level(action)
    return f"{sop.path or sop.name}:{action.line}: {keyword} {action.text}"


# -- one execution --------------------------------------------------------------------


@dataclass
class _Replay:
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


_SCALARS = frozenset({int, float, str, bool, type(None)})
_OUTPUT_KEYS = ("output", "output_removed")  # sort before "result"
_STATE_KEYS = ("state", "state_removed")  # sort after it


class _Abandoned(BaseException):
    """Raised in a worker whose action timed out: the main thread has taken the run over."""


class _Hot:
    """A bound line's constants for every run of its plan."""

    __slots__ = ("aid", "captures", "func", "handler", "is_check", "step", "text", "timeout")

    def __init__(self, binding: Binding, aid: str, step: Step | None, timeout: float) -> None:
        action, match = binding.action, binding.match
        assert match is not None
        self.aid = aid
        self.func = match.handler.func
        self.captures = match.captures
        self.step = step
        self.timeout = timeout
        self.is_check = action.kind is ActionKind.CHECK
        self.handler = match.handler.name
        self.text = action.text


class _Line:
    """What never changes for one SOP line and handler: ActionResult fields, JSON pieces."""

    __slots__ = ("aid", "head", "info", "tail")

    def __init__(self, action: Action, handler: Any) -> None:
        self.aid = aid = action.id
        name = handler.name if handler is not None else None
        level, kind = _level(action), action.kind.value
        self.info = (aid, action.line, level, kind, action.text, action.step, name)
        c = canonical  # the sorted keys of ActionResult.to_dict around the changing ones
        self.head = (
            f'"handler":{c(name)},"id":{c(aid)},"kind":{c(kind)},'
            f'"level":{c(level)},"line":{c(action.line)}'
        )
        self.tail = f'"step":{c(action.step)},"text":{c(action.text)}'


class _Prepared:
    """A plan's per-line constants, worked out before the first handler runs.

    The planner hands out the same (frozen) bindings tuple for every run of a SOP,
    registry generation and branch choice, so a long-lived process (API, MCP server)
    prepares each plan once, not once per run.
    """

    __slots__ = ("bindings", "hot", "info", "lines", "tick", "timeout_default")

    def __init__(self, sop: Sop, bindings: tuple[Binding, ...], timeout_default: float) -> None:
        self.bindings = bindings
        self.timeout_default = timeout_default
        self.info: dict[int, tuple[Any, ...]] = {}
        self.hot: dict[int, _Hot] = {}
        self.lines: dict[str, _Line] = {}
        steps = {step.number: step for step in sop.steps}
        positive: list[float] = []
        for binding in bindings:
            action, match = binding.action, binding.match
            line = _Line(action, match.handler if match is not None else None)
            self.lines[line.aid] = line
            self.info[id(binding)] = line.info
            if binding.status != "bound" or match is None:
                continue
            own = match.handler.timeout
            timeout = timeout_default if own is None else float(own)
            if timeout > 0:
                positive.append(timeout)
            step = steps.get(action.step) if action.step is not None else None
            self.hot[id(binding)] = _Hot(binding, line.aid, step, timeout)
        # The watchdog sleeps at most the smallest timeout, so a deadline set while it
        # sleeps is never earlier than its wake-up: the worker never needs to wake it.
        self.tick = min(positive) if positive else None


#: id(bindings) -> _Prepared; the entry holds the tuple, so an id is never reused while cached.
_PREPARED: dict[int, _Prepared] = {}


def _prepared(plan: Plan, timeout_default: float) -> _Prepared:
    bindings = plan.bindings
    hit = _PREPARED.get(id(bindings))
    if hit is not None and hit.bindings is bindings and hit.timeout_default == timeout_default:
        return hit
    if len(_PREPARED) >= 256:
        _PREPARED.clear()
    prepared = _PREPARED[id(bindings)] = _Prepared(plan.sop, bindings, timeout_default)
    return prepared


def _started_text(attempt: int, key: str) -> str:
    """``canonical({"attempt": attempt, "idempotency_key": key})``, spelled directly."""
    return f'{{"attempt":{attempt},"idempotency_key":"{key}"}}'


#: Keyed by ``status._value_`` (a plain attribute): hashing an Enum member or reading its
#: ``.value`` runs Python code, and this is looked up once per action.
_STATUS_JSON = {status.value: f'"{status.value}"' for status in ActionStatus}


class _Execution:
    """One pass over a plan.

    The loop runs in a worker thread and calls the handlers directly (no thread
    hand-off per action); the calling thread is a watchdog that sleeps until the
    current attempt's deadline. On a timeout the watchdog fails that action, marks
    the worker abandoned (it exits, journaling nothing more, once its handler
    returns) and continues the run in a fresh worker.
    """

    def __init__(
        self,
        *,
        plan: Plan,
        run_id: str,
        journal: Store,
        registry: Registry | None,
        services: Services,
        parent_run_id: str | None,
        replay: _Replay | None = None,
        confirmed: bool = False,
    ) -> None:
        self.plan = plan
        self.sop = plan.sop
        self.run_id = run_id
        self.journal = journal
        self.registry = registry
        self.services = services
        self.parent_run_id = parent_run_id
        self.replay = replay or _Replay()
        self.params = MappingProxyType(dict(plan.params))
        self.state: dict[str, Any] = dict(self.replay.state)
        self.output: dict[str, Any] = dict(self.replay.output)
        self.confirmed = confirmed or bool(self.replay.confirmed_operations)
        self.current: str | None = None
        self._logger: logging.Logger | None = None
        self.timeout_default = action_timeout_default()
        self.base_delay = retry.base_delay()
        self._committed: list[tuple[str, str | None]] = []
        self._crash_after = os.environ.get("SOP_CRASH_AFTER")
        #: (name, the dict handlers write, fingerprint of each key's last journaled value)
        self._watched = tuple(
            (
                name,
                values,
                {k: repr(v) if type(v) in _SCALARS else canonical(v) for k, v in values.items()},
            )
            for name, values in (("state", self.state), ("output", self.output))
        )
        self._prepared = _prepared(plan, self.timeout_default)
        self._confirmed_ops = frozenset(self.replay.confirmed_operations)
        #: actions a resume must reconcile: their outcome was unknown, or they were cut off
        self._reconcile = frozenset(
            [aid for aid, done in self.replay.done.items() if done.get("status") == "unknown"]
            + ([self.replay.in_flight] if self.replay.in_flight else [])
        )
        self._base_ctx: RunContext | None = None  # never handed to a handler; copied per action
        # loop state, guarded by _lock (entered directly: no Python frame per acquisition)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._gen = 0
        self._index = 0
        self._deadline: float | None = None
        self._current: tuple[Binding, int, float, float] | None = None
        self._finished = False
        self._abort = False
        self._error: BaseException | None = None
        self.results: list[ActionResult] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.pending: dict[str, Any] | None = None
        self.unknown = False
        self.stopped: str | None = None

    def _log(self) -> logging.Logger:
        """The run's logger, made on first use: most runs never log."""
        if self._logger is None:
            self._logger = run_logger(self.journal, self.run_id, lambda: self.current)
        return self._logger

    # -- journal helpers -------------------------------------------------------------
    def _event(
        self,
        type_: str,
        action_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        raw: Mapping[str, Any] | None = None,
        defer: bool = False,
    ) -> None:
        """Journal an event; a deferred one is committed with the next (before any handler)."""
        self.journal.append(self.run_id, type_, action_id, data, raw=raw, defer=defer)
        if self._crash_after:
            self._crash_marks(type_, action_id, defer)

    def _crash_marks(self, type_: str, action_id: str | None, defer: bool) -> None:
        """Crash points fire once the event (and the ones deferred with it) is committed."""
        self._committed.append((type_, action_id))
        if not defer:
            for mark in self._committed:
                _crashpoint(*mark, self._crash_after)
            self._committed.clear()

    def _deltas(self) -> dict[str, Any]:
        """The state/output keys changed since the last journaled action (by value)."""
        out: dict[str, Any] = {}
        scalars = _SCALARS
        for name, values, seen in self._watched:
            if not values and not seen:
                continue
            changed: dict[str, Any] | None = None
            items = list(values.items())  # a timed-out handler may still be writing
            skipped = False
            for key, value in items:
                try:  # repr of a scalar is a cheap, exact fingerprint
                    text = repr(value) if type(value) in scalars else canonical(value)
                except (RuntimeError, ValueError):  # being mutated by a timed-out handler
                    skipped = True
                    continue
                if seen.get(key) != text:
                    if changed is None:
                        changed = {}
                    changed[key] = value
                    seen[key] = text
            if changed:
                out[name] = changed
            if skipped or len(seen) > len(items):  # else every seen key is still present
                present = {k for k, _ in items}
                removed = [k for k in seen if k not in present]
                for key in removed:
                    del seen[key]
                if removed:
                    out[f"{name}_removed"] = removed
        return out

    def _finish_event(self, result: ActionResult) -> None:
        """What resume needs (the rest of the line's facts come from the plan)."""
        reason = canonical(redact_text(result.reason)) if result.reason else "null"
        cause = f'"cause":{redacted_json(result.cause)},' if result.cause else ""
        # canonical({"result": {...}, **redact(deltas), "traceback": ...}), in sorted key order
        row = (
            f'"result":{{"attempts":{result.attempts},{cause}'
            f'"duration_ms":{round(result.duration_ms, 3)!r},'
            f'"reason":{reason},"status":{_STATUS_JSON[result.status._value_]}}}'
        )
        deltas = self._deltas()
        if deltas or result.traceback:
            parts = [f'"{k}":{redacted_json(deltas[k])}' for k in _OUTPUT_KEYS if k in deltas]
            inexact = altered_keys(deltas["state"]) if "state" in deltas else None
            if inexact:  # resume cannot restore these (see _resume_owned)
                parts.append(f'"redacted_state":{canonical(inexact)}')
            parts.append(row)
            parts += [f'"{k}":{redacted_json(deltas[k])}' for k in _STATE_KEYS if k in deltas]
            if result.traceback:  # redacted by causes.traceback_text
                parts.append(f'"traceback":{canonical(redact_text(result.traceback))}')
            text = "{" + ",".join(parts) + "}"
        else:
            text = "{" + row + "}"
        self.journal.append_text(self.run_id, "action_finished", result.id, text, defer=True)
        if self._crash_after:
            self._crash_marks("action_finished", result.id, True)

    # -- the watchdog (calling thread) ---------------------------------------------------
    def execute(self) -> RunResult:
        tick = self._prepared.tick
        self._spawn()
        try:
            with self._cond:
                while not self._finished and self._error is None:
                    now = time.monotonic()
                    if self._deadline is not None and now >= self._deadline:
                        self._time_out()
                        continue
                    wait = tick
                    if self._deadline is not None:
                        wait = min(self._deadline - now, tick or self._deadline - now)
                    self._cond.wait(wait)
        except BaseException:
            with self._cond:
                self._abort = True
            raise
        if self._error is not None:
            raise self._error
        return self._result()

    def _spawn(self) -> None:
        workers.submit(partial(self._loop, self._gen))

    def _time_out(self) -> None:
        """Under the lock: fail the stuck action, abandon its worker, continue in a new one."""
        assert self._current is not None
        binding, attempts, started, timeout = self._current
        self._gen += 1
        self._deadline = None
        self._current = None
        message = f"timed out after {timeout:g} s"
        status = ActionStatus.FAILED
        if self._reconcile and self._prepared.info[id(binding)][0] in self._reconcile:
            status, message = ActionStatus.UNKNOWN, f"outcome unknown: {message}"
        result = self._action_result(
            binding, status, message, attempts, (time.perf_counter() - started) * 1e3
        )
        self._finish_event(result)
        self._settle(binding, result, message, None)
        self._index += 1
        self.current = None
        self._spawn()

    # -- the worker --------------------------------------------------------------------
    def _loop(self, gen: int) -> None:
        """Run bindings from ``_index`` on; one lock acquisition per line to settle it."""
        try:
            bindings = self.plan.bindings
            hot_of = self._prepared.hot.get
            replayed = bool(self.replay.done)
            passed = ActionStatus.PASSED
            lock = self._lock
            with lock:
                if self._gen != gen or self._abort:
                    return
                index = self._index
            while index < len(bindings):
                binding = bindings[index]
                hot = hot_of(id(binding))
                if hot is None or replayed or self.stopped is not None:
                    outcome, message, pause = self._step(binding, gen)
                else:
                    outcome, message, pause = self._run_action(binding, hot, gen)
                with lock:
                    if self._gen != gen:
                        return
                    if outcome.status is passed:
                        self.results.append(outcome)
                    else:
                        self._settle(binding, outcome, message, pause)
                    self._index = index = index + 1
                    if self._abort:
                        return
            with self._cond:
                if self._gen == gen:
                    self._finished = True
                    self._cond.notify_all()
        except _Abandoned:
            return
        except BaseException as exc:
            with self._cond:
                if self._gen == gen:
                    self._error = exc
                    self._cond.notify_all()

    def _step(
        self, binding: Binding, gen: int
    ) -> tuple[ActionResult, str | None, dict[str, Any] | None]:
        if self.stopped is not None:
            return self._skipped(binding, self.stopped), None, None
        if binding.status != "bound":
            return self._skipped(binding, binding.reason or "no handler"), None, None
        hot = self._prepared.hot[id(binding)]
        done = self.replay.done.get(hot.aid) if self.replay.done else None
        if done is not None and done["status"] != ActionStatus.UNKNOWN.value:
            result = self._action_result(
                binding,
                ActionStatus(done["status"]),
                done.get("reason"),
                int(done.get("attempts", 0)),
                float(done.get("duration_ms", 0.0)),
            )
            result.cause = done.get("cause")
            return result, result.reason, None
        # not run yet, or its outcome is unknown: run it (again, with the same key)
        return self._run_action(binding, hot, gen)

    def _settle(
        self,
        binding: Binding,
        outcome: ActionResult,
        message: str | None,
        pause: dict[str, Any] | None,
    ) -> None:
        """Under the lock: record an action's outcome and what it means for the run."""
        action = binding.action
        self.results.append(outcome)
        if outcome.status is ActionStatus.PENDING:
            self.pending = pause
            self.stopped = f"not reached: waiting for confirmation of line {action.line}"
        elif outcome.status is ActionStatus.UNKNOWN:  # whatever its level: reconcile first
            self.unknown = True
            self.errors.append(message or "outcome unknown")
            self.stopped = f"not reached: the outcome of line {action.line} is unknown"
        elif outcome.status is ActionStatus.FAILED:
            if binding.required:
                self.errors.append(message or "failed")
                self.stopped = f"not reached: the run failed at line {action.line}"
            else:
                self.warnings.append(
                    f"line {action.line}: {_level(action)} {action.text}: {message}"
                )

    def _result(self) -> RunResult:
        status = (
            RunStatus.PAUSED
            if self.pending is not None
            else RunStatus.UNKNOWN
            if self.unknown
            else RunStatus.FAILED
            if self.errors
            else RunStatus.SUCCEEDED
        )
        result = RunResult(
            run_id=self.run_id,
            sop=self.sop.name,
            version=self.sop.version,
            content_hash=self.sop.content_hash,
            status=status,
            output=self.output,
            actions=list(self.results),
            errors=list(self.errors),
            warnings=list(self.warnings),
            pending=self.pending,
            parent_run_id=self.parent_run_id,
        )
        type_ = "run_paused" if status is RunStatus.PAUSED else "run_finished"
        self.journal.append_text(
            self.run_id, type_, None, self._result_json(result), status=status.value
        )
        if self._crash_after:
            self._crash_marks(type_, None, False)
        return result

    def _result_json(self, result: RunResult) -> str:
        """``canonical({"result": result.to_dict()})`` (token blanked: shown once, the journal
        keeps its hash), with each line's constant fields from the per-line cache."""
        pending = None
        if result.pending is not None:
            pending = dict(redact({k: v for k, v in result.pending.items() if k != "token"}))
            pending["token"] = None
        rest = canonical(
            {
                "content_hash": result.content_hash,
                "errors": [redact_text(e) for e in result.errors],
                "output": jsonable(redact(result.output)),
                "parent_run_id": result.parent_run_id,
                "pending": pending,
                "run_id": result.run_id,
                "sop": result.sop,
                "status": result.status.value,
                "version": result.version,
                "warnings": [redact_text(w) for w in result.warnings],
            }
        )
        lines = self._prepared.lines
        items = []
        for a in result.actions:
            line = lines.get(a.id)
            if line is None or line.info != (
                a.id, a.line, a.level, a.kind, a.text, a.step, a.handler
            ):  # fmt: skip
                items.append(canonical(a.to_dict()))
                continue
            reason = canonical(redact_text(a.reason)) if a.reason else "null"
            cause = redacted_json(a.cause) if a.cause else "null"
            items.append(
                f'{{"attempts":{a.attempts},"cause":{cause},'
                f'"duration_ms":{round(a.duration_ms, 3)!r},'
                f'{line.head},"reason":{reason},"status":{_STATUS_JSON[a.status._value_]},{line.tail}}}'
            )
        # "actions" sorts before every other key of the result
        return '{"result":{"actions":[' + ",".join(items) + "]," + rest[1:] + "}"

    def _action_result(
        self,
        binding: Binding,
        status: ActionStatus,
        reason: str | None,
        attempts: int = 0,
        duration_ms: float = 0.0,
    ) -> ActionResult:
        aid, line, level, kind, text, step, handler = self._prepared.info[id(binding)]
        return ActionResult(
            aid, line, level, kind, text, status, reason, attempts, duration_ms, step, handler
        )

    def _skipped(self, binding: Binding, reason: str) -> ActionResult:
        return self._action_result(binding, ActionStatus.SKIPPED, reason)

    def _attempt(
        self,
        binding: Binding,
        hot: _Hot,
        gen: int,
        ctx: RunContext,
        key: str,
        started: float,
        number: int,
    ) -> Any:
        """One call of the handler: ``action_started`` committed first, the deadline armed
        for the watchdog around the call."""
        ctx._attempt = number
        aid = hot.aid
        self.journal.append_text(self.run_id, "action_started", aid, _started_text(number, key))
        if self._crash_after:
            self._crash_marks("action_started", aid, False)
        timeout = hot.timeout
        lock = self._lock
        with lock:
            if self._gen != gen or self._abort:
                raise _Abandoned
            self._deadline = time.monotonic() + timeout if timeout > 0 else None
            self._current = (binding, number, started, timeout)
        try:
            value = hot.func(ctx, **hot.captures)
        finally:
            with lock:
                if self._gen != gen:
                    raise _Abandoned  # timed out meanwhile: the watchdog owns the outcome
                self._deadline = None
                self._current = None
        if self._crash_after:
            _crashpoint("handler_returned", aid, self._crash_after)
        return value

    def _run_action(
        self, binding: Binding, hot: _Hot, gen: int
    ) -> tuple[ActionResult, str | None, dict[str, Any] | None]:
        action = binding.action
        aid = hot.aid
        self.current = aid
        key = idempotency_key(self.run_id, aid)
        confirmed_ops = self._confirmed_ops
        base = self._base_ctx
        if base is None:  # the first action run: services factories receive this one
            base = self._base_ctx = RunContext(
                run_id=self.run_id,
                sop=self.sop,
                params=self.params,
                state=self.state,
                output=self.output,
                action=action,
                services=self.services,
                log=self._log,
                journal=self.journal,
                registry=self.registry,
                confirmed=self.confirmed,
                confirmed_operations=confirmed_ops,
            )
        ctx = base.for_action(action)
        # resumed after an unknown outcome or a crash mid-action: an earlier call may have
        # acted, and stays the suspect until an attempt gets an answer
        unknown = [aid in self._reconcile] if self._reconcile else [False]
        ctx._reconciling = unknown[0]
        if self.replay.pending_action == aid:
            for out_key in self.replay.pending_output_keys:  # the pause's output, now answered
                self.output.pop(out_key, None)
        started = time.perf_counter()
        status, reason, message, pause = ActionStatus.PASSED, None, None, None
        error: BaseException | None = None
        try:
            try:  # attempt 1 is a plain call; the retry machinery is built only on a failure
                value = self._attempt(binding, hot, gen, ctx, key, started, 1)
            except Exception as first:
                attempt = partial(self._attempt, binding, hot, gen, ctx, key, started)
                value = self._retry_after(first, attempt, aid, hot.step, unknown)
            if hot.is_check and value is False:
                status, message = ActionStatus.FAILED, f"check failed: {hot.text}"
        except NotApplicable as exc:
            status, reason = ActionStatus.SKIPPED, redact_text(f"not applicable: {exc.reason}")
        except ConfirmationRequired as exc:
            op_hash = confirmation.operation_hash(self.run_id, exc.operation)
            if op_hash in confirmed_ops:
                status = ActionStatus.FAILED
                message = (
                    f"handler {hot.handler} asked again to confirm the operation a person "
                    "already confirmed"
                )
            else:
                status = ActionStatus.PENDING
                pause = self._pause(action, exc, op_hash, ctx._attempt, started)
                reason = redact_text(exc.message)
        except (KeyboardInterrupt, SystemExit, _Abandoned):
            raise
        except BaseException as exc:
            status, message, error = ActionStatus.FAILED, sop_message(exc, self.sop, hot.step), exc
            if isinstance(exc, OutcomeUnknown) or (unknown[0] and not self._answered(exc, hot)):
                status = ActionStatus.UNKNOWN
                message = f"outcome unknown after {ctx._attempt} attempt(s): {message}"
        duration_ms = (time.perf_counter() - started) * 1000.0
        if status is ActionStatus.FAILED or status is ActionStatus.UNKNOWN:
            reason = redact_text(message or "failed")
            message = reason
        result = self._action_result(binding, status, reason, ctx._attempt, duration_ms)
        if error is not None:
            result.cause = causes.describe(error, _ATTEMPT_CODE)
            result.traceback = causes.traceback_text(error, _ATTEMPT_CODE)
        if status is not ActionStatus.PENDING:
            self._finish_event(result)
        self.current = None
        return result, message, pause

    def _answered(self, exc: BaseException, hot: _Hot) -> bool:
        """A failure that settles an unknown outcome: the other side answered and the SOP
        retries no further (a decline, a 400 for the same idempotency key). A transient
        failure (429), or a bug in the handler, proves nothing about an earlier attempt."""
        return (
            isinstance(exc, SopFailure)
            and not isinstance(exc, OutcomeUnknown)
            and not retry.policy_for(exc, self.sop, hot.step).retry
        )

    def _retry_after(
        self,
        first: Exception,
        attempt: Callable[[int], Any],
        aid: str,
        step: Step | None,
        unknown: list[bool],
    ) -> Any:
        """``retry.call`` from attempt 1's failure on: re-raised when its policy allows no
        retry, else attempts 2.. follow, each retry journaled before its attempt.
        ``unknown[0]`` becomes true once a retried attempt's outcome was unknown."""

        def replay(number: int) -> Any:
            if number == 1:
                raise first
            return attempt(number)

        def on_retry(number: int, exc: BaseException, delay: float) -> None:
            if isinstance(exc, OutcomeUnknown):
                unknown[0] = True
            self._event(
                "action_retry",
                aid,
                {"attempt": number, "error": sop_message(exc, self.sop, step)},
                raw={"delay": round(delay, 6)},
            )

        return retry.call(
            replay,
            lambda exc: retry.policy_for(exc, self.sop, step),
            on_retry=on_retry,
            base=self.base_delay,
        )

    def _pause(
        self,
        action: Action,
        exc: ConfirmationRequired,
        op_hash: str,
        attempts: int,
        started: float,
    ) -> dict[str, Any]:
        token = confirmation.new_token()
        expires = time.time() + confirmation.ttl_seconds()
        self.output.update(exc.output)
        result = {
            "id": action.id,
            "step": action.step,
            "line": action.line,
            "level": _level(action),
            "kind": action.kind.value,
            "text": action.text,
            "status": ActionStatus.PENDING.value,
            "reason": exc.message,
            "attempts": attempts,
            "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }
        deltas = self._deltas()
        self.journal.add_confirmation(
            self.run_id,
            action.id,
            token_hash=confirmation.token_hash(token),
            operation_hash=op_hash,
            expires_at=expires,
            data={
                "message": exc.message,
                "result": result,
                "output_keys": sorted(exc.output),
                **deltas,
                "redacted_state": altered_keys(deltas.get("state") or {}),
            },
        )
        _crashpoint("action_pending", action.id, self._crash_after)
        return {
            "token": token,
            "operation": redact(dict(exc.operation)),
            "message": redact_text(exc.message),
            "expires_at": confirmation.iso(expires),
            "action_id": action.id,
            "line": action.line,
        }


#: The code of the frame that calls a handler: the frame it calls is the handler's.
_ATTEMPT_CODE = _Execution._attempt.__code__


# -- replay ---------------------------------------------------------------------------


def _replay(journal: Store, run_id: str) -> _Replay:
    replay = _Replay()
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
        elif event.type == "confirmation_used":
            op = pending_hashes.get(str(data.get("token_hash")))
            if op:
                replay.confirmed_operations.add(op)
    return replay


# -- public API -----------------------------------------------------------------------


def _load(sop: Sop | str) -> Sop:
    if isinstance(sop, Sop):
        return sop
    from engine.language.catalog import load

    return load(sop)


def _registry_factories(registry: Registry | None) -> dict[str, Callable[..., Any]]:
    if registry is None:
        from engine.binding.registry import default_registry

        registry = default_registry
    return registry.services()


def _services(registry: Registry | None, services: Mapping[str, Any] | None) -> Services:
    if isinstance(services, Services):
        return services
    return Services(services, _registry_factories(registry))


def _plan(sop: Sop, params: Mapping[str, Any], registry: Registry | None) -> Plan:
    from engine.binding.planner import plan

    planned = plan(sop, params, registry=registry)
    if not planned.ok:
        raise PlanRefused([_unbound_line(b, sop) for b in planned.unbound])
    return planned


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
) -> RunResult:
    """Plan, refuse if a required line is unbound, then execute guards and steps in order.

    With ``confirm``: the token names a paused run of this SOP with these parameters;
    that run resumes (see ``resume``). ``handlers`` (module names) are recorded so
    ``sop resume`` can import them again. ``run_id``/``parent_run_id`` are for child runs.
    """
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    rid: str | None = None
    try:
        loaded = _load(sop)
        if confirm is not None:
            return _run_confirmed(loaded, params, confirm, jr, registry, services)
        planned = _plan(loaded, params, registry)
        earlier = _earlier_run(jr, loaded.name, planned.params)
        if earlier is not None:
            return earlier
        rid = run_id or _new_run_id()
        jr.start_run(  # the run's lease rides with its first commit, released by its end
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
        jr.append(rid, "plan", data={"skipped": skipped}, defer=True)
        execution = _Execution(
            plan=planned,
            run_id=rid,
            journal=jr,
            registry=registry,
            services=_services(registry, services),
            parent_run_id=parent_run_id,
        )
        return execution.execute()
    finally:
        try:
            if rid is not None:
                jr.release_lease(rid)  # a run stopped by an exception: resumable at once
        finally:
            if owned:
                JOURNALS.release(jr)


def _run_confirmed(
    sop: Sop,
    params: Mapping[str, Any],
    token: str,
    journal: Store,
    registry: Registry | None,
    services: Mapping[str, Any] | None,
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
        if row.status in (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value):
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
        elif (owner := journal.lease(row.run_id)) and not may_take_over(owner, time.time()):
            state, command = f"is still running ({owner.owner()})", f"sop inspect {row.run_id}"
        else:
            state = "was interrupted"
        raise SopError(
            f"refusing to run {sop}: run {row.run_id} with the same {IDEMPOTENCY_PARAM} {state};"
            f" continue it with: {command}"
        )
    return None


def _new_run_id() -> str:
    """A random hex id that redaction leaves alone (no long, Luhn-passing digit run)."""
    while True:
        rid = uuid.uuid4().hex
        if redact_text(rid) == rid:
            return rid


def _load_for_resume(sop_name: str, sop_path: str | None, content_hash: str | None) -> Sop:
    sop: Sop | None = None
    if sop_path and Path(sop_path).is_file():
        from engine.language.parser import parse

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


def resume(
    run_id: str,
    *,
    confirm: str | None = None,
    params: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    journal: Store | None = None,
    services: Mapping[str, Any] | None = None,
) -> RunResult:
    """Continue a paused (with ``confirm``) or interrupted run from what its journal says.

    The run's lease is taken first (another live owner: LeaseHeld, nothing done) and
    released when the run ends, pauses or stops. ``params``: the exact values of the
    parameters redaction altered in the journal (checked against the recorded hash).
    """
    owned = journal is None
    jr = journal if journal is not None else JOURNALS.acquire()
    try:
        if jr.run(run_id) is None:
            raise UsageError(f"unknown run '{run_id}' (journal {jr.path})")
        previous = jr.acquire_lease(run_id)
        try:
            return _resume_owned(run_id, confirm, params, previous, registry, jr, services)
        finally:
            jr.release_lease(run_id)
    finally:
        if owned:
            JOURNALS.release(jr)


def _resume_owned(
    run_id: str,
    confirm: str | None,
    params: Mapping[str, Any] | None,
    previous: Lease | None,
    registry: Registry | None,
    jr: Store,
    services: Mapping[str, Any] | None,
) -> RunResult:
    """``resume`` once this process holds the run's lease."""
    started = jr.verified_run(run_id)  # everything below acts on chained events only
    if confirm is not None:
        found = confirmation.lookup(jr, confirm)
        if found.run_id != run_id:
            raise SopError(f"confirmation token does not match run {run_id}")
        if found.used_at is not None:
            raise SopError("confirmation token already used")
    if started.status in (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value):
        raise SopError(f"run {run_id} already {started.status}; nothing to resume")
    sop = sop_for_resume(started)
    planned = _plan(sop, _resume_params(started, params), registry)
    replay = _replay(jr, run_id)
    if replay.inexact_state:
        raise SopError(
            f"run {run_id} cannot resume exactly: redaction altered"
            f" state {', '.join(sorted(replay.inexact_state))} in the journal, and its handlers"
            f" would act on the altered values; refusing (nothing ran; `sop inspect {run_id}`"
            " shows what it did)"
        )
    confirmed = False
    if replay.pending_action is not None:
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
        )
        replay = _replay(jr, run_id)  # now includes the spent token's operation
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
    execution = _Execution(
        plan=planned,
        run_id=run_id,
        journal=jr,
        registry=registry,
        services=_services(registry, services),
        parent_run_id=started.parent_run_id,
        replay=replay,
        confirmed=confirmed,
    )
    return execution.execute()


def recorded_result(journal: Store, run_id: str) -> RunResult | None:
    """The result a finished or paused run journaled last (without the confirmation token)."""
    last: dict[str, Any] | None = None
    for event in journal.events(run_id):
        if event.type in ("run_finished", "run_paused"):
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
    if row.status in (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, RunStatus.PAUSED.value):
        recorded = recorded_result(journal, run_id)
        if recorded is not None:
            return recorded
    return resume(run_id, registry=registry, journal=journal, services=services)


__all__ = [
    "ActionResult",
    "ActionStatus",
    "RunResult",
    "RunStatus",
    "recorded_result",
    "resume",
    "run",
    "sop_message",
]
