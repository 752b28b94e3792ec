"""Why an action failed, kept next to the SOP's words for it.

The SOP's Error Handling message is what a run reports ("Log error, return failure
details"); the cause says what actually happened: the exception's type and message,
the structured facts a handler attached to a ``SopFailure`` (a Stripe error's HTTP
status, type, code and request id), the handler's file:line and where the exception
was raised. It goes into the action's result (``cause``). The traceback, redacted,
goes only to the journal and to ``--debug`` output.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from collections.abc import Callable, Mapping
from functools import cache
from types import TracebackType
from typing import Any

from engine.errors import SopError, SopFailure
from engine.execution.redact import redact_text
from engine.execution.retry import conditions_match
from engine.model import Sop, Step

MAX_MESSAGE = 500
MAX_TRACEBACK = 8000
#: ``SopFailure.details`` shown first, in this order, in the one-line summary.
_FACTS = ("http_status", "stripe_error", "error_type", "code", "decline_code", "request_id")


@cache
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(sorted(os.path.join(os.path.realpath(p), "") for p in found))


def _shown(filename: str) -> str:
    """``filename`` relative to the import root it was loaded from (handlers/payments.py)."""
    real = os.path.realpath(filename)
    best = ""
    for entry in sys.path:
        root = os.path.join(os.path.realpath(entry or os.curdir), "")
        if real.startswith(root) and len(root) > len(best):
            best = root
    return real[len(best) :] if best else filename


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return redact_text(text)


def call_handler(func: Callable[..., Any], ctx: Any, captures: Mapping[str, Any]) -> Any:
    """Call a handler. Every handler is called here, so in a traceback the frame this
    function calls is the handler's (``where``)."""
    return func(ctx, **captures)


def sop_message(exc: BaseException, sop: Sop, step: Step | None) -> str:
    """The SOP's words for a failure: the matching Error Handling rule's quoted message,
    else its response; the raising action's step first, then any step. Otherwise the
    exception's own message (after its type, unless it is the engine's own SopError)."""
    if isinstance(exc, SopFailure):
        steps = [step] if step is not None else []
        steps += [s for s in sop.steps if s is not step]
        for candidate in steps:
            for rule in candidate.error_rules:
                if conditions_match(exc.condition, rule.condition):
                    return rule.message or rule.response
        return exc.message
    text = str(exc).strip()
    stub = _unwritten(exc)
    if stub is not None:
        return f"NotImplementedError: {stub}" + (f" ({text.splitlines()[0]})" if text else "")
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    # the engine's own errors are whole sentences; anything else is a bug: name its type
    return first if isinstance(exc, SopError) else f"{type(exc).__name__}: {first}"


def _unwritten(exc: BaseException) -> str | None:
    """For a NotImplementedError raised by the handler itself (a ``sop stub`` skeleton not
    filled in): which handler to write, and where."""
    if not isinstance(exc, NotImplementedError):
        return None
    start = _handler_tb(exc)
    if start is None or start.tb_next is not None:  # raised deeper: a library's own gap
        return None
    code = start.tb_frame.f_code
    where = f"{_shown(code.co_filename)}:{code.co_firstlineno}"
    return f"handler {code.co_name} is not written yet: fill in its body ({where})"


def describe(exc: BaseException) -> dict[str, Any]:
    """The cause of a failure as JSON-ready facts (redacted).

    ``where`` is the handler's frame (the one ``call_handler`` called), ``raised_at``
    the innermost frame outside the standard library and installed packages, when it
    differs.
    """
    cause: dict[str, Any] = {"type": type(exc).__name__, "message": _message(exc)}
    if isinstance(exc, SopFailure):
        cause["condition"] = redact_text(exc.condition)
        for key, value in exc.details.items():
            if isinstance(value, str | int | float | bool) and key not in cause:
                cause[key] = redact_text(value) if isinstance(value, str) else value
    start = _handler_tb(exc)
    frames = list(traceback.walk_tb(start or exc.__traceback__))
    handler = frames[0] if start is not None else None
    libraries = _library_dirs()
    raised = next(
        (
            entry
            for entry in reversed(frames)
            if not os.path.realpath(entry[0].f_code.co_filename).startswith(libraries)
        ),
        None,
    )
    if handler is not None:
        cause["where"] = _location(*handler)
    stub = _unwritten(exc)
    if stub is not None:
        cause["hint"] = stub
    if raised is not None and raised is not handler:
        cause["raised_at"] = _location(*raised)
    return cause


def _location(frame: Any, line: int) -> str:
    return f"{_shown(frame.f_code.co_filename)}:{line} in {frame.f_code.co_name}"


def _handler_tb(exc: BaseException) -> TracebackType | None:
    """The traceback entry of the handler's frame: the one ``call_handler`` called (last time)."""
    found = None
    tb = exc.__traceback__
    caller = call_handler.__code__
    while tb is not None:
        if tb.tb_frame.f_code is caller and tb.tb_next is not None:
            found = tb.tb_next
        tb = tb.tb_next
    return found


def traceback_text(exc: BaseException) -> str:
    """The redacted traceback from the handler's frame on (chained causes included); at most
    the last MAX_TRACEBACK characters."""
    start = _handler_tb(exc) or exc.__traceback__  # the engine's frames above: noise
    lines = traceback.format_exception(type(exc), exc, start)
    text = redact_text("".join(lines))
    if len(text) > MAX_TRACEBACK:
        cut = len(text) - MAX_TRACEBACK
        text = f"... ({cut} characters cut)\n" + text[-MAX_TRACEBACK:]
    return text


def summary(cause: dict[str, Any]) -> str:
    """One line: ``SopFailure [payment fails]: message (HTTP 401, ...) at file:line in f``."""
    head = str(cause.get("type") or "error")
    if cause.get("condition"):
        head += f" [{cause['condition']}]"
    if cause.get("message"):
        head += f": {cause['message']}"
    facts = []
    for key in _FACTS:
        value = cause.get(key)
        if value is None:
            continue
        facts.append(f"HTTP {value}" if key == "http_status" else f"{key} {value}")
    if facts:
        head += f" ({', '.join(facts)})"
    if cause.get("where"):
        head += f" at {cause['where']}"
    if cause.get("raised_at"):
        head += f"; raised at {cause['raised_at']}"
    if cause.get("hint"):
        head += f" ({cause['hint']})"
    return head
