"""sop-engine: run Standard Operating Procedures written in markdown.

The public API is imported lazily so that ``import engine`` (and ``sop lint``)
stays cheap; nothing here imports a handler pack or stripe.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.errors import (
    BindingError,
    ConfirmationRequired,
    NotApplicable,
    OutcomeUnknown,
    ParameterError,
    PlanRefused,
    SopError,
    SopFailure,
    UsageError,
)
from engine.model import Action, ActionKind, Diagnostic, Level, Severity, Sop

if TYPE_CHECKING:
    from engine.binding.planner import Plan, plan
    from engine.binding.registry import Registry, action, check
    from engine.distributed.submit import submit
    from engine.execution.context import RunContext
    from engine.execution.decide import cancel, confirm, reject
    from engine.execution.guided import report
    from engine.execution.runner import RunResult, resume, run
    from engine.language.catalog import load
    from engine.language.parser import parse

_LAZY: dict[str, str] = {
    "parse": "engine.language.parser",
    "load": "engine.language.catalog",
    "plan": "engine.binding.planner",
    "Plan": "engine.binding.planner",
    "Registry": "engine.binding.registry",
    "action": "engine.binding.registry",
    "check": "engine.binding.registry",
    "RunContext": "engine.execution.context",
    "run": "engine.execution.runner",
    "resume": "engine.execution.runner",
    "report": "engine.execution.guided",
    "RunResult": "engine.execution.runner",
    "reject": "engine.execution.decide",
    "cancel": "engine.execution.decide",
    "confirm": "engine.execution.decide",
    "submit": "engine.distributed.submit",
}

__all__ = [
    "Action",
    "ActionKind",
    "BindingError",
    "ConfirmationRequired",
    "Diagnostic",
    "Level",
    "NotApplicable",
    "OutcomeUnknown",
    "ParameterError",
    "Plan",
    "PlanRefused",
    "Registry",
    "RunContext",
    "RunResult",
    "Severity",
    "Sop",
    "SopError",
    "SopFailure",
    "UsageError",
    "action",
    "cancel",
    "check",
    "confirm",
    "load",
    "parse",
    "plan",
    "reject",
    "report",
    "resume",
    "run",
    "submit",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
