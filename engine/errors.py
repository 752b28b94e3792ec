"""What handlers raise to talk to the runner, and what the engine raises to callers.

Handlers signal *conditions*; the engine answers with the SOP's own words (its
Error Handling message and Error Recovery policy), so the markdown stays the
source of truth.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(text: str) -> str:
    """``text`` as an error may show it: redacted, control characters escaped (one line).

    Error messages quote what the caller sent; a card number given as an amount, or a
    parameter name holding a newline, must not reach a terminal, a log or an agent raw.
    """
    # imported here, not at the top: every `import engine` (the `sop lint` cold start is a
    # target, README "Speed") would compile the redaction regexes, ~4 ms, for no error
    from engine.execution.redact import redact_text

    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", redact_text(text))


class SopError(Exception):
    """Base of every error the engine raises on purpose; its str() is one line."""


class UsageError(SopError):
    """Bad invocation: unknown SOP, invalid parameters, bad option (exit code 2)."""


class ParameterError(UsageError):
    """Parameters failed validation; ``problems`` lists each as 'name: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [shown(problem) for problem in problems]
        super().__init__("invalid parameters: " + "; ".join(self.problems))


class BindingError(SopError):
    """Registry problems found at load time: ambiguous patterns, bad patterns."""


class HandlerImportError(SopError):
    """A handler module could not be imported; names the module and the file."""


class NotApplicable(Exception):
    """Raised by a handler: this action does not apply to this run (status skipped)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ConfirmationRequired(Exception):
    """Raised by a handler: a person must confirm before this action may go on.

    ``operation`` describes the exact pending operation (amount, target, ...); the
    confirmation token is bound to it. ``output`` is merged into the run's output
    while it waits (e.g. ``requires_confirmation``, ``message``, ``pending_refund``).
    """

    def __init__(
        self,
        message: str,
        operation: dict[str, Any],
        output: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.operation = operation
        self.output = output or {}
        super().__init__(message)


class SopFailure(Exception):
    """Raised by a handler: the SOP condition ``condition`` happened.

    The runner maps ``condition`` to the SOP's Error Handling rule (its quoted
    message) and Error Recovery row (retry, escalate). ``retryable`` lets a handler
    mark a transient failure itself; ``details`` are structured facts (redacted
    before they are stored or shown).
    """

    def __init__(
        self,
        condition: str,
        message: str | None = None,
        *,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.condition = condition
        self.message = message or condition
        self.retryable = retryable
        self.details = details or {}
        super().__init__(self.message)


class OutcomeUnknown(SopFailure):
    """Raised by a handler: a side effect may or may not have happened.

    The request may have reached the other side and no answer came back (a timeout,
    a connection reset after sending, a 5xx). It is retried like any ``SopFailure``
    of its condition (same idempotency key, so a request that did act is replayed,
    not repeated); when the attempts run out and the outcome is still unknown, the
    action ends ``unknown`` and so does the run: it is never reported ``failed``,
    and ``resume`` reconciles it. Raise it only where a side effect is in doubt
    (a write), not for reads.
    """

    def __init__(
        self,
        condition: str,
        message: str | None = None,
        *,
        retryable: bool | None = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(condition, message, retryable=retryable, details=details)


class PlanRefused(SopError):
    """The plan has unbound MUST lines or checks; nothing has run. One line per gap."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("refusing to run, unbound: " + "; ".join(lines))


class LintRefused(SopError):
    """The SOP has lint errors, so it never runs; nothing has. One line per error."""

    def __init__(self, name: str, lines: list[str]) -> None:
        self.lines = lines
        super().__init__(
            f"refusing to run {name}: {len(lines)} lint error(s) (nothing ran):\n"
            + "\n".join(f"  {line}" for line in lines)
        )
