"""The walk over a plan: every line in order, each settled before the next, until the
run ends, pauses for a confirmation, or stops (a required line failed, an outcome is
unknown, a cancellation was requested). Lines after the stop are skipped ("not reached").

``sop cancel`` of a run another process is executing appends a ``cancel_requested``
event; the walk looks for it before each bound line, so the run stops between actions,
never in the middle of a side effect.

The walk runs in a worker thread under the watchdog (engine.execution.watchdog); the
line's own execution is the step layer (engine.execution.step); what is journaled is
the record layer (engine.execution.record).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.execution import performer
from engine.execution.context import ChildRunner, Services, run_logger
from engine.execution.record import Recorder
from engine.execution.replay import Replay
from engine.execution.result import ActionResult, ActionStatus, RunResult, RunStatus
from engine.execution.settings import seconds
from engine.execution.step import Outcome, StepRunner, handler_name, handler_timeout
from engine.execution.watchdog import Watchdog
from engine.storage.base import Store

if TYPE_CHECKING:
    from engine.binding.planner import Binding, Plan
    from engine.binding.registry import Registry

DEFAULT_ACTION_TIMEOUT = 120.0


def action_timeout_default() -> float:
    return seconds("SOP_ACTION_TIMEOUT_SECONDS", DEFAULT_ACTION_TIMEOUT, zero="no timeout")


class Walk:
    """One pass over a plan (a new run, or a resumed one with its ``replay``)."""

    def __init__(
        self,
        *,
        plan: Plan,
        run_id: str,
        journal: Store,
        registry: Registry | None,
        services: Services,
        parent_run_id: str | None,
        child_runner: ChildRunner,
        replay: Replay | None = None,
        confirmed: bool = False,
    ) -> None:
        replay = replay or Replay()
        self.plan = plan
        self.sop = plan.sop
        self.run_id = run_id
        self.journal = journal
        self.parent_run_id = parent_run_id
        self.output: dict[str, Any] = dict(replay.output)
        state: dict[str, Any] = dict(replay.state)
        self.recorder = Recorder(journal, run_id, state, self.output)
        self._logger: logging.Logger | None = None
        timeout_default = action_timeout_default()
        timeouts = [
            handler_timeout(b, timeout_default) for b in plan.bindings if b.status == "bound"
        ]
        self.watchdog = Watchdog(min((t for t in timeouts if t > 0), default=None))
        self.steps = StepRunner(
            sop=self.sop,
            run_id=run_id,
            params=MappingProxyType(dict(plan.params)),
            state=state,
            output=self.output,
            services=services,
            registry=registry,
            recorder=self.recorder,
            watchdog=self.watchdog,
            replay=replay,
            confirmed=confirmed or bool(replay.confirmed_operations),
            log=self._log,
            child_runner=child_runner,
            timeout_default=timeout_default,
            on_timeout=self._timed_out,
        )
        self.index = 0
        self.results: list[ActionResult] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.pending: dict[str, Any] | None = None
        self.tasks = performer.Tasks(plan, replay.reports)
        self.waiting: list[Binding] = []  # the open tasks of the step the run waits on
        self.failing: int | None = -1  # the step a required task's failure ends (-1: none)
        self.unknown = False
        self.blocked: str | None = None
        self.stopped: str | None = None
        self.cancelled: dict[str, Any] | None = None  # the cancel request's who and why

    def _log(self) -> logging.Logger:
        """The run's logger, made on first use: most runs never log."""
        if self._logger is None:
            self._logger = run_logger(self.journal, self.run_id, lambda: self.steps.current)
        return self._logger

    def execute(self) -> RunResult:
        self.watchdog.run(self._walk)
        return self._result()

    def _walk(self, generation: int) -> None:
        """Lines from ``index`` on, in a worker thread; each settled under the lock."""
        bindings = self.plan.bindings
        with self.watchdog.lock:
            self.watchdog.check(generation)
            index = self.index
        while index < len(bindings):
            binding = bindings[index]
            outcome = self._line(binding, generation)
            with self.watchdog.lock:
                self.watchdog.check(generation)
                self._settle(binding, outcome)
                self.index = index = index + 1

    def _line(self, binding: Binding, generation: int) -> Outcome:
        if binding.status == "performer":
            return self._task(binding)
        if self.stopped is not None:
            return self._skipped(binding, self.stopped)
        if binding.status != "bound":
            return self._skipped(binding, binding.reason or "no handler")
        request = self.journal.cancel_request(self.run_id)
        if request is not None:
            with self.watchdog.lock:
                self.cancelled = request.data
                self.stopped = f"not reached: run cancelled by {request.data.get('by')}"
            return self._skipped(binding, self.stopped)
        return self.steps.run(binding, generation)

    def _task(self, binding: Binding) -> Outcome:
        """A performer's line: its report's outcome, or pending while its step has open
        tasks (the first one met makes the run wait on the whole step). A required task
        whose failure stands fails the step at once: nothing waits for the others."""
        if binding in self.waiting:
            return performer.pending(binding)
        step = binding.action.step
        settled = self.tasks.outcome(binding)
        failed = settled is not None and settled.result.status is ActionStatus.FAILED
        if self.stopped is not None:
            waits_here = bool(self.waiting) and self.waiting[0].action.step == step
            if settled is not None and (waits_here or (failed and self.failing == step)):
                return settled  # reported while its step waits / the failure that ends it
            return self._skipped(binding, self.stopped)
        if self.tasks.step_failed(step):
            self.failing = step
            if not (failed and binding.required):  # nothing else of the step runs
                self.stopped = f"not reached: a required task of step {step} failed"
            return settled if settled is not None else self._skipped(binding, self.stopped or "")
        self.waiting = self.tasks.open_in(step)
        if binding in self.waiting:
            return performer.pending(binding)
        return settled if settled is not None else self._skipped(binding, "not reached")

    def _skipped(self, binding: Binding, reason: str) -> Outcome:
        status = ActionStatus.SKIPPED
        return Outcome(ActionResult.of(binding.action, handler_name(binding), status, reason))

    def _timed_out(self, binding: Binding, outcome: Outcome) -> None:
        """Under the lock, from the watchdog: the stuck line is settled, the walk goes on."""
        self._settle(binding, outcome)
        self.index += 1

    def _settle(self, binding: Binding, outcome: Outcome) -> None:
        """Under the lock: record a line's outcome and what it means for the run."""
        action, result, message = binding.action, outcome.result, outcome.message
        self.results.append(result)
        self.warnings.extend(outcome.warnings)
        if self.waiting and self.stopped is None:
            step = action.step
            where = f"step {step}" if step is not None else "the SOP-wide guards"
            self.stopped = f"not reached: waiting for the {binding.performer}'s reports on {where}"
        if outcome.blocked is not None:  # "block transaction": whatever the line's level
            self.blocked = outcome.blocked
            self.errors.append(f"blocked: {outcome.blocked}")
            self.stopped = f"not reached: the run was blocked at line {action.line}"
        elif result.status is ActionStatus.PENDING:
            if outcome.pause is None:
                return  # a performer's open task
            self.pending = outcome.pause
            self.stopped = f"not reached: waiting for confirmation of line {action.line}"
        elif result.status is ActionStatus.UNKNOWN:  # whatever its level: reconcile first
            self.unknown = True
            self.errors.append(message or "outcome unknown")
            self.stopped = f"not reached: the outcome of line {action.line} is unknown"
        elif result.status is ActionStatus.FAILED:
            if binding.required:
                self.errors.append(message or "failed")
                self.stopped = f"not reached: the run failed at line {action.line}"
            else:
                self.warnings.append(
                    f"line {action.line}: {action.level.value} {action.text}: {message}"
                )

    def _result(self) -> RunResult:
        if self.pending is not None:
            status = RunStatus.PAUSED
        elif self.unknown:
            status = RunStatus.UNKNOWN
        elif self.cancelled is not None:
            status = RunStatus.CANCELLED
            reason = self.cancelled.get("reason")
            self.errors.append(
                f"cancelled by {self.cancelled.get('by')}" + (f": {reason}" if reason else "")
            )
        elif self.blocked is not None:
            status = RunStatus.BLOCKED
        elif self.waiting and not self.errors:
            status = RunStatus.WAITING
        else:
            status = RunStatus.FAILED if self.errors else RunStatus.SUCCEEDED
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
            tasks=self.tasks.listed(self.waiting) if status is RunStatus.WAITING else [],
        )
        self.recorder.ended(result)
        return result
