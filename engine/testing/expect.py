"""What an Example expects of the run itself, beside its output: a status or an error.

``Expected Output`` is compared with the SOP's output fields, but an Example may also
expect a failure: ``status: failed`` names the run's status and ``error: TEXT`` an error
(a substring of one of the run's errors or of a failed action's cause message, or the
cause's exception type: ``KeyError``, ``SopFailure``). An SOP's own output may have a
``status`` or ``error`` field (Stripe's ``status: succeeded``): when the output has that
key, the key is the output's and is compared as any other field.

An Example that names neither expects the run not to fail: a failed or unknown run fails
the Example even when the output fields it shows match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATUS = "status"
ERROR = "error"
#: Run statuses an Example that expects no failure accepts.
NOT_FAILED = ("succeeded", "paused")
#: The run statuses ``status:`` may name (engine.execution.result.RunStatus values).
RUN_STATUSES = ("succeeded", "failed", "paused", "unknown")


@dataclass
class RunExpectation:
    """The run-level part of an Example's Expected Output, and the rest (output fields)."""

    output: dict[str, Any]
    status: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def expects_failure(self) -> bool:
        return bool(self.errors) or self.status not in (None, *NOT_FAILED)


def split(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> RunExpectation:
    """``expected`` cut into the run's status and errors and the output fields."""
    out = RunExpectation(dict(expected))
    if STATUS in out.output and STATUS not in actual:
        value = out.output[STATUS]
        if isinstance(value, str) and value in RUN_STATUSES:
            out.status = out.output.pop(STATUS)
    if ERROR in out.output and ERROR not in actual:
        value = out.output.pop(ERROR)
        out.errors = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return out


def problems(
    want: RunExpectation,
    status: str,
    errors: Sequence[str],
    causes: Sequence[Mapping[str, Any]],
) -> list[str]:
    """One line per way the run's status and errors differ from what ``want`` expects."""
    found: list[str] = []
    if want.status is not None and want.status != status:
        found.append(f"status: expected {want.status!r}, got {status!r}")
    if not want.expects_failure and status not in NOT_FAILED:
        shown = "; ".join(errors) or "no error recorded"
        found.append(f"run {status} ({shown}); an Example expecting it names status or error")
    for text in want.errors:
        if not _matches(text, errors, causes):
            seen = [*errors, *(str(c.get("type")) for c in causes)]
            found.append(f"error: expected {text!r}, got {seen or 'no error'}")
    return found


def _matches(text: str, errors: Sequence[str], causes: Sequence[Mapping[str, Any]]) -> bool:
    needle = text.casefold()
    if any(needle in e.casefold() for e in errors):
        return True
    for cause in causes:
        if text == cause.get("type") or needle in str(cause.get("message", "")).casefold():
            return True
    return False


__all__ = ["ERROR", "STATUS", "RunExpectation", "problems", "split"]
