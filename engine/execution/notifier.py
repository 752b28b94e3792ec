"""Who hears about a failure when the SOP's Error Recovery says "notify" or "escalate".

A pack plugs in its own delivery (mail, chat, a ticket) by registering a service named
:data:`SERVICE` whose object has ``deliver(notice)``; without one the engine's default
writes one line on stderr. Either way the engine journals the notice first
(``notified`` / ``escalated``, message redacted), keyed so that a notifier that
honours ``notice.key`` delivers it once even when a crashed run's line fails again
on resume.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: the service name a pack registers its notifier under (``@registry.service(SERVICE)``)
SERVICE = "recovery_notifier"


@dataclass(frozen=True)
class Notice:
    """One notification the SOP asked for; every text field is already redacted."""

    kind: str  # "notify" | "escalate"
    to: str  # "user", "supervisor", ...
    message: str  # why: the failure's message
    condition: str  # the failure ("Fraud detected")
    procedure: str  # the Error Recovery row as written ("Block transaction, escalate to ...")
    line: int  # the row's line in the SOP
    sop: str
    run_id: str
    action_id: str
    key: str  # stable per run, line and row: deliver once per key
    params: Mapping[str, Any] = field(default_factory=dict)  # the run's (redacted) parameters

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "to": self.to,
            "message": self.message,
            "condition": self.condition,
            "procedure": self.procedure,
            "line": self.line,
            "key": self.key,
        }


@runtime_checkable
class Notifier(Protocol):
    """What a pack's notifier service provides."""

    def deliver(self, notice: Notice) -> None: ...


class StderrNotifier:
    """The default: one line on stderr per notice (the journal keeps the record)."""

    def deliver(self, notice: Notice) -> None:
        verb = "escalated to" if notice.kind == "escalate" else "notified"
        print(
            f"sop: {verb} {notice.to}: {notice.condition}: {notice.message}"
            f" (run {notice.run_id}, SOP line {notice.line})",
            file=sys.stderr,
            flush=True,
        )


def notifier_from(services: Mapping[str, Any]) -> Notifier:
    """The pack's notifier when one is registered, else the stderr default."""
    if SERVICE in services:
        found = services[SERVICE]
        if not isinstance(found, Notifier):
            raise TypeError(f"service {SERVICE!r} has no deliver(notice) method")
        return found
    return StderrNotifier()
