"""What a run did: statuses, each SOP line's fate, the run's result (JSON-ready, redacted)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from engine.execution.redact import redact, redact_text
from engine.model import Action, jsonable

RESULT_SCHEMA = "run-result.schema.json"


class ActionStatus(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # unbound optional line, off the selected path, not applicable, not reached
    PENDING = "pending"  # waiting for a person's confirmation or a performer's report
    UNKNOWN = "unknown"  # a side effect may have happened: resume reconciles it


class RunStatus(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PAUSED = "paused"  # awaiting confirmation
    RUNNING = "running"
    UNKNOWN = "unknown"  # an action's outcome is unknown: resume reconciles it
    REJECTED = "rejected"  # a person declined the pending operation (engine.execution.decide)
    CANCELLED = "cancelled"  # stopped on request before its next action
    WAITING = "waiting"  # for the agent's or person's reports on a step's tasks
    BLOCKED = "blocked"  # the SOP said "block transaction" for a failure: over, exit 1
    INTERRUPTED = "interrupted"  # running, but its process is gone: `sop resume RUN_ID`
    QUEUED = "queued"  # submitted, waiting for a worker (engine.distributed)


#: statuses a run never leaves: resume refuses them
FINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.REJECTED,
        RunStatus.CANCELLED,
        RunStatus.BLOCKED,
    }
)


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

    @classmethod
    def of(
        cls,
        action: Action,
        handler: str | None,
        status: ActionStatus,
        reason: str | None = None,
        attempts: int = 0,
        duration_ms: float = 0.0,
    ) -> ActionResult:
        """The result of ``action`` (bound to ``handler``, if any)."""
        return cls(
            action.id,
            action.line,
            action.level.value,
            action.kind.value,
            action.text,
            status,
            reason,
            attempts,
            duration_ms,
            action.step,
            handler,
        )

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
    #: the open tasks of the step a waiting run waits on (engine.execution.performer)
    tasks: list[dict[str, Any]] = field(default_factory=list)

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
        if self.tasks:
            data["tasks"] = [redact(task) for task in self.tasks]
        if validate:
            _validator().validate(data)
        return data

    def stored_dict(self) -> dict[str, Any]:
        """``to_dict`` as the journal keeps it: the confirmation token blanked (it is shown
        once; the journal keeps its hash)."""
        data = self.to_dict(validate=False)
        if data["pending"] is not None:
            data["pending"]["token"] = None
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
            tasks=list(data.get("tasks") or []),
        )


@cache
def _validator() -> Any:
    # imported on first validation: jsonschema is slow to import and `sop lint` never needs it
    import jsonschema

    from engine.language.resources import load_schema

    schema = load_schema(RESULT_SCHEMA)
    return jsonschema.Draft202012Validator(schema)
