"""What the SOP's recovery words do when a line fails for good.

Retrying is the retry layer's (engine.execution.retry: ``do not retry`` wins there).
Once a line has failed (no retry left), each Error Recovery row (and the step's Error
Handling rule) whose error type matches the failure's condition applies its other
phrases: ``notify X`` and ``escalate to X`` become a :class:`~engine.execution.notifier.Notice`,
journaled (``notified`` / ``escalated``) before the notifier service delivers it;
``block transaction`` makes the run ``blocked`` instead of ``failed``. An unknown
outcome is not a failure, so it notifies and blocks nothing: resume reconciles it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import SopFailure
from engine.execution.context import idempotency_key
from engine.execution.notifier import Notice, notifier_from
from engine.execution.redact import redact, redact_text
from engine.execution.retry import conditions_match
from engine.language import recovery
from engine.model import Sop, Step
from engine.storage.base import Store

EVENTS = {"notify": "notified", "escalate": "escalated"}


@dataclass(frozen=True)
class Effects:
    """The notices a failure calls for, and the reason the run is blocked (if it is)."""

    notices: tuple[Notice, ...] = ()
    blocked: str | None = None


@dataclass(frozen=True)
class _Said:
    condition: str
    procedure: str
    line: int
    fields: recovery.RecoveryFields


def _rules(condition: str, sop: Sop, step: Step | None) -> list[_Said]:
    said = [
        _Said(rule.condition, rule.response, rule.line, recovery.interpret(rule.response))
        for rule in (step.error_rules if step else ())
        if conditions_match(condition, rule.condition)
    ]
    said.extend(
        _Said(row.error_type, row.procedure, row.line, recovery.interpret(row.procedure))
        for row in sop.recovery
        if conditions_match(condition, row.error_type)
    )
    return said


def for_failure(
    exc: BaseException,
    sop: Sop,
    step: Step | None,
    *,
    run_id: str,
    action_id: str,
    message: str,
    params: Mapping[str, Any],
) -> Effects:
    """The effects the SOP states for this failure (none for a failure with no condition)."""
    if not isinstance(exc, SopFailure):
        return Effects()
    notices: list[Notice] = []
    blocked: str | None = None
    safe_params = dict(redact(dict(params)))
    for said in _rules(exc.condition, sop, step):
        wanted = []
        if said.fields["notify"]:
            wanted.append(("notify", said.fields["notify_to"] or "user"))
        if said.fields["escalate"]:
            wanted.append(("escalate", said.fields["escalate_to"] or "supervisor"))
        for kind, to in wanted:
            notices.append(
                Notice(
                    kind=kind,
                    to=to,
                    message=redact_text(message),
                    condition=redact_text(exc.condition),
                    procedure=said.procedure,
                    line=said.line,
                    sop=sop.name,
                    run_id=run_id,
                    action_id=action_id,
                    key=idempotency_key(run_id, action_id, f"recovery-L{said.line}-{kind}"),
                    params=safe_params,
                )
            )
        if said.fields["block"] and blocked is None:
            blocked = redact_text(
                f"{exc.condition} (line {said.line}: {said.procedure}): {message}"
            )
    return Effects(tuple(notices), blocked)


def apply(effects: Effects, journal: Store, services: Mapping[str, Any]) -> list[str]:
    """Journal each notice (once per key), then deliver it; returns warnings for the run.

    A notice whose event is already journaled (the line failed again after a crash) is
    delivered again with the same key: the notifier drops what it already sent.
    A notifier that fails does not change the line's outcome: the run says so.
    """
    if not effects.notices:
        return []
    run_id = effects.notices[0].run_id
    journaled = {
        str(e.data.get("key")) for e in journal.events(run_id) if e.type in EVENTS.values()
    }
    warnings: list[str] = []
    try:
        notifier = notifier_from(services)
    except (KeyError, TypeError) as exc:
        return [f"recovery notices not delivered: {exc}"]
    for notice in effects.notices:
        if notice.key not in journaled:
            journal.append(run_id, EVENTS[notice.kind], notice.action_id, data=notice.to_dict())
        try:
            notifier.deliver(notice)
        except Exception as exc:  # a mail server down must not turn a failure into a crash
            warnings.append(
                redact_text(
                    f"line {notice.line}: could not {notice.kind} {notice.to}:"
                    f" {type(exc).__name__}: {exc}"
                )
            )
    return warnings
