"""One bound SOP line, composed the way durable-execution engines compose a step
(as DBOS Transact does): replay -> retry -> attempt -> record.

- replay: an action the journal says finished is not run again; its result stands.
- retry: ``engine.execution.retry`` calls attempts until one returns or the SOP's
  policy allows no more; each retry is journaled before its attempt.
- attempt: ``action_started`` is committed, the watchdog's deadline armed, the
  handler called (``engine.execution.cause.call_handler``).
- record: the outcome (passed, failed, skipped, unknown) becomes ``action_finished``;
  a confirmation gate becomes ``action_pending`` instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.errors import ConfirmationRequired, NotApplicable, OutcomeUnknown, SopFailure
from engine.execution import cause as causes
from engine.execution import confirm as confirmation
from engine.execution import recovery_effects, retry
from engine.execution.context import ChildRunner, RunContext, Services, idempotency_key
from engine.execution.record import Recorder
from engine.execution.redact import redact_text
from engine.execution.replay import Replay
from engine.execution.result import ActionResult, ActionStatus
from engine.execution.watchdog import Abandoned, Watchdog
from engine.model import ActionKind, Sop, Step

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.binding.planner import Binding
    from engine.binding.registry import Registry


class Outcome(NamedTuple):
    """What became of one line, and what it means for the run."""

    result: ActionResult
    #: the error (or warning) text for the run, when it failed or its outcome is unknown
    message: str | None = None
    #: the confirmation the run now waits for (with its token)
    pause: dict[str, Any] | None = None
    #: why the run is blocked: the SOP says "block transaction" for this failure
    blocked: str | None = None
    #: what the run should say besides (a notifier that could not deliver)
    warnings: tuple[str, ...] = ()


def handler_name(binding: Binding) -> str | None:
    return binding.match.handler.name if binding.match is not None else None


def handler_timeout(binding: Binding, default: float) -> float:
    """The bound handler's own timeout, else ``default`` (0: none)."""
    assert binding.match is not None
    own = binding.match.handler.timeout
    return default if own is None else float(own)


class StepRunner:
    """Runs the bound lines of one run, one at a time (see the module docstring)."""

    def __init__(
        self,
        *,
        sop: Sop,
        run_id: str,
        params: Mapping[str, Any],
        state: dict[str, Any],
        output: dict[str, Any],
        services: Services,
        registry: Registry | None,
        recorder: Recorder,
        watchdog: Watchdog,
        replay: Replay,
        confirmed: bool,
        log: Callable[[], logging.Logger],
        child_runner: ChildRunner,
        timeout_default: float,
        on_timeout: Callable[[Binding, Outcome], None],
    ) -> None:
        self.sop = sop
        self.run_id = run_id
        self.params = params
        self.state = state
        self.output = output
        self.services = services
        self.registry = registry
        self.recorder = recorder
        self.watchdog = watchdog
        self.replay = replay
        self.confirmed = confirmed
        self.log = log
        self.child_runner = child_runner
        self.timeout_default = timeout_default
        self.on_timeout = on_timeout
        self.base_delay = retry.base_delay()
        self.steps = {step.number: step for step in sop.steps}
        self.confirmed_operations = frozenset(replay.confirmed_operations)
        #: actions a resume must reconcile: their outcome was unknown, or they were cut off
        self.reconcile = replay.to_reconcile()
        #: the action whose handler is running (log lines are journaled against it)
        self.current: str | None = None

    # -- replay --------------------------------------------------------------------
    def run(self, binding: Binding, generation: int) -> Outcome:
        """A bound line: its journaled result when it finished before, else executed."""
        aid = binding.action.id
        done = self.replay.recorded(aid)
        if done is None:  # not run yet, or its outcome is unknown: run it (again, same key)
            return self._execute(binding, aid, generation)
        result = ActionResult.of(
            binding.action,
            handler_name(binding),
            ActionStatus(done["status"]),
            done.get("reason"),
            int(done.get("attempts", 0)),
            float(done.get("duration_ms", 0.0)),
        )
        result.cause = done.get("cause")
        return Outcome(result, result.reason)

    # -- retry, and the outcome recorded -------------------------------------------
    def _execute(self, binding: Binding, aid: str, generation: int) -> Outcome:
        action, match = binding.action, binding.match
        assert match is not None
        step = self.steps.get(action.step) if action.step is not None else None
        # resumed after an unknown outcome or a crash mid-action: an earlier call may have
        # acted, and stays the suspect until an attempt gets an answer
        unknown = [aid in self.reconcile]
        ctx = RunContext(
            run_id=self.run_id,
            sop=self.sop,
            params=self.params,
            state=self.state,
            output=self.output,
            action=action,
            services=self.services,
            log=self.log,
            journal=self.recorder.journal,
            registry=self.registry,
            confirmed=self.confirmed,
            confirmed_operations=self.confirmed_operations,
            reconciling=unknown[0],
            child_runner=self.child_runner,
        )
        if self.replay.pending_action == aid:
            for out_key in self.replay.pending_output_keys:  # the pause's output, now answered
                self.output.pop(out_key, None)
        self.current = aid
        started = time.perf_counter()

        def on_retry(number: int, exc: BaseException, delay: float) -> None:
            if isinstance(exc, OutcomeUnknown):
                unknown[0] = True
            message = causes.sop_message(exc, self.sop, step)
            self.recorder.retried(aid, number, message, delay)

        status, reason, message, pause = ActionStatus.PASSED, None, None, None
        error: BaseException | None = None
        try:
            value = retry.call(
                partial(self._attempt, binding, aid, ctx, started, generation),
                lambda exc: retry.policy_for(exc, self.sop, step),
                on_retry=on_retry,
                base=self.base_delay,
            )
            if action.kind is ActionKind.CHECK and value is False:
                status, message = ActionStatus.FAILED, f"check failed: {action.text}"
        except NotApplicable as exc:
            status, reason = ActionStatus.SKIPPED, redact_text(f"not applicable: {exc.reason}")
        except ConfirmationRequired as exc:
            op_hash = confirmation.operation_hash(self.run_id, exc.operation)
            if op_hash in self.confirmed_operations:
                status = ActionStatus.FAILED
                message = (
                    f"handler {match.handler.name} asked again to confirm the operation a"
                    " person already confirmed"
                )
            else:
                status, reason = ActionStatus.PENDING, redact_text(exc.message)
                self.output.update(exc.output)  # what the caller needs to decide
                duration = (time.perf_counter() - started) * 1000.0
                pause = self.recorder.paused(action, exc, op_hash, ctx.attempt, duration)
        except (KeyboardInterrupt, SystemExit, Abandoned):
            raise
        except BaseException as exc:
            status, message, error = (
                ActionStatus.FAILED,
                causes.sop_message(exc, self.sop, step),
                exc,
            )
            if isinstance(exc, OutcomeUnknown) or (unknown[0] and not self._answered(exc, step)):
                status = ActionStatus.UNKNOWN
                message = f"outcome unknown after {ctx.attempt} attempt(s): {message}"
        duration_ms = (time.perf_counter() - started) * 1000.0
        if status is ActionStatus.FAILED or status is ActionStatus.UNKNOWN:
            reason = message = redact_text(message or "failed")
        result = ActionResult.of(
            action, match.handler.name, status, reason, ctx.attempt, duration_ms
        )
        if error is not None:
            result.cause = causes.describe(error)
            result.traceback = causes.traceback_text(error)
        blocked, warnings = None, []
        if status is ActionStatus.FAILED and error is not None:  # the SOP's recovery, if any
            effects = recovery_effects.for_failure(
                error,
                self.sop,
                step,
                run_id=self.run_id,
                action_id=aid,
                message=message or "failed",
                params=self.params,
            )
            warnings = recovery_effects.apply(effects, self.recorder.journal, self.services)
            blocked = effects.blocked
        if status is not ActionStatus.PENDING:
            self.recorder.finished(result)
        self.current = None
        return Outcome(result, message, pause, blocked, tuple(warnings))

    def _answered(self, exc: BaseException, step: Step | None) -> bool:
        """A failure that settles an unknown outcome: the other side answered and the SOP
        retries no further (a decline, a 400 for the same idempotency key). A transient
        failure (429), or a bug in the handler, proves nothing about an earlier attempt."""
        return (
            isinstance(exc, SopFailure)
            and not isinstance(exc, OutcomeUnknown)
            and not retry.policy_for(exc, self.sop, step).retry
        )

    # -- one attempt, under the watchdog's deadline --------------------------------
    def _attempt(
        self,
        binding: Binding,
        aid: str,
        ctx: RunContext,
        started: float,
        generation: int,
        number: int,
    ) -> Any:
        """One call of the handler: ``action_started`` committed first, the deadline armed
        for the watchdog around the call."""
        assert binding.match is not None
        ctx.begin_attempt(number)
        self.recorder.started(aid, number, idempotency_key(self.run_id, aid))
        timeout = handler_timeout(binding, self.timeout_default)
        expired = partial(self._timed_out, binding, number, started, timeout)
        self.watchdog.arm(generation, timeout, expired)
        try:
            value = causes.call_handler(binding.match.handler.func, ctx, binding.match.captures)
        finally:
            self.watchdog.disarm(generation)  # Abandoned if the watchdog settled it meanwhile
        self.recorder.handler_returned(aid)
        return value

    def _timed_out(self, binding: Binding, attempts: int, started: float, timeout: float) -> None:
        """Called by the watchdog (under its lock): fail the stuck action, as unknown when
        an earlier call's outcome was already unknown."""
        message = f"timed out after {timeout:g} s"
        status = ActionStatus.FAILED
        if binding.action.id in self.reconcile:
            status, message = ActionStatus.UNKNOWN, f"outcome unknown: {message}"
        duration_ms = (time.perf_counter() - started) * 1e3
        result = ActionResult.of(
            binding.action, handler_name(binding), status, message, attempts, duration_ms
        )
        self.recorder.finished(result)
        self.current = None
        self.on_timeout(binding, Outcome(result, message))
