"""Bind an SOP and its parameters to handlers: what will run, and what will be skipped and why.

Planning happens before any side effect: parameters are validated (every problem at
once), "X environment variable configured" prerequisites are checked, branches are
selected from the parameters, and every line on the selected path is bound. An
unbound required line does not raise here; ``Plan.ok`` is False and the runner
refuses to start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.binding.handler import Match
from engine.binding.normalize import clean
from engine.binding.registry import Registry
from engine.errors import UsageError
from engine.model import PERFORMERS, Action, ActionKind, Branch, Sop, jsonable

_ENV_PREREQ = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*) environment variable (?:is )?(?:configured|set|defined|present)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Binding:
    action: Action
    match: Match | None
    status: str  # "bound" | "unbound" | "performer" | "off_path"
    reason: str | None  # "no handler" | "branch 'For Refunds' not selected (operation=charge)"
    #: who performs the line: "code" (a handler; unbound code lines are "unbound"), or the
    #: "agent" / "person" the SOP (or ``--performer``) names for its unbound lines
    performer: str = "code"

    @property
    def required(self) -> bool:
        """MUST / MUST NOT actions and guards, and checks at MUST level (the default)."""
        return self.action.level.required


@dataclass(frozen=True)
class Plan:
    sop: Sop
    params: dict[str, Any]  # validated, defaults applied
    bindings: tuple[Binding, ...]  # guards first, then steps in order, source order within
    performer: str | None = None  # --performer: for files that name none

    @property
    def unbound(self) -> tuple[Binding, ...]:
        """Required lines on the path with no handler: the run must not start."""
        return tuple(b for b in self.bindings if b.status == "unbound" and b.required)

    @property
    def skipped(self) -> tuple[Binding, ...]:
        """Optional unbound lines and lines off the selected path."""
        return tuple(
            b
            for b in self.bindings
            if b.status == "off_path" or (b.status == "unbound" and not b.required)
        )

    @property
    def ok(self) -> bool:
        return not self.unbound

    @property
    def performer_lines(self) -> tuple[Binding, ...]:
        """Lines on the path an agent or a person performs: the run pauses for them."""
        return tuple(b for b in self.bindings if b.status == "performer")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; validated against schemas/plan.schema.json."""
        # lazy: jsonschema is heavy, and only --json output needs it
        import jsonschema

        from engine.language.resources import load_schema

        data = {
            "sop": self.sop.name,
            "title": self.sop.title,
            "version": self.sop.version,
            "path": self.sop.path,
            "content_hash": self.sop.content_hash,
            "params": jsonable(self.params),
            "ok": self.ok,
            "bindings": [binding_dict(b, self.sop) for b in self.bindings],
            "unbound": [location(b.action, self.sop) for b in self.unbound],
        }
        jsonschema.validate(data, load_schema("plan.schema.json"))
        return data


def location(action: Action, sop: Sop) -> str:
    return f"{sop.path or sop.name}:{action.line}"


def level_label(action: Action) -> str:
    return action.level.value


def handler_dict(match: Match | None) -> dict[str, Any] | None:
    if match is None:
        return None
    h = match.handler
    return {
        "name": h.name,
        "pattern": h.pattern,
        "file": h.file,
        "line": h.line,
        "sop": h.sop,
        "step": None if h.step is None else str(h.step),
    }


def binding_dict(binding: Binding, sop: Sop) -> dict[str, Any]:
    action = binding.action
    return {
        "id": action.id,
        "line": action.line,
        "location": location(action, sop),
        "kind": action.kind.value,
        "level": level_label(action),
        "step": action.step,
        "block": action.block,
        "branch": action.branch,
        "text": action.text,
        "required": binding.required,
        "status": binding.status,
        "performer": binding.performer,
        "reason": binding.reason,
        "handler": handler_dict(binding.match),
        "captures": jsonable(binding.match.captures) if binding.match else {},
    }


def missing_environment(sop: Sop, environ: Mapping[str, str] | None = None) -> list[str]:
    """Variables named by "<NAME> environment variable configured/set" that are not set."""
    env = os.environ if environ is None else environ
    names = sop.derived(("environment prerequisites",), lambda: _environment_names(sop))
    return [name for name in names if not env.get(name)]


def _environment_names(sop: Sop) -> tuple[str, ...]:
    """The variables the SOP's prerequisites name, in order (read once per SOP)."""
    found = (_ENV_PREREQ.match(clean(line)) for line in sop.prerequisites)
    return tuple(match.group(1) for match in found if match)


def _branch_off(sop: Sop, step: int, label: str, params: Mapping[str, Any]) -> str | None:
    """None when the parameters select the branch ``label`` of ``step``, else why not."""
    branch = _find_branch(sop, step, label)
    if branch is None or branch.param is None or branch.value is None:
        return None  # an unresolved branch cannot be decided: keep the line (fail closed)
    given = params.get(branch.param)
    if given is not None and str(given).lower() == branch.value.lower():
        return None
    shown = f"{branch.param}={given}" if given is not None else f"{branch.param} not given"
    return f"branch 'For {branch.label}' not selected ({shown})"


def _find_branch(sop: Sop, step_number: int, label: str) -> Branch | None:
    for step in sop.steps:
        if step.number == step_number:
            for branch in step.branches:
                if branch.label == label or f"For {branch.label}" == label:
                    return branch
    return None


def _branch_lines(sop: Sop) -> tuple[tuple[int, str], ...]:
    """Each (step, branch label) some line of the SOP sits under, once."""
    found = {(a.step, a.branch) for a in sop.all_actions() if a.step is not None and a.branch}
    return tuple(sorted((step, label) for step, label in found if label is not None))


def bind_line(
    action: Action,
    sop: Sop,
    registry: Registry,
    off_path: str | None = None,
    performer: str | None = None,
) -> Binding:
    """One line's binding; ``off_path`` is the reason it is not on the selected path.

    A bound line always runs as code; an unbound one is the performer's task when its
    step or SOP (or, where the file says nothing, ``performer``) names an agent or a
    person, else "unbound": a missing handler never silently becomes someone's task.
    """
    who = sop.performer_of(action, performer)
    if off_path is not None:
        return Binding(action, None, "off_path", off_path, who)
    kind = ActionKind.CHECK if action.kind is ActionKind.CHECK else ActionKind.ACTION
    found = registry.match(action.text, sop=sop.name, step=action.step, kind=kind)
    if found is not None:
        return Binding(action, found, "bound", None, "code")
    if who != "code":
        return Binding(action, None, "performer", None, who)
    return Binding(action, None, "unbound", "no handler", who)


def plan(
    sop: Sop | str,
    params: Mapping[str, Any],
    *,
    registry: Registry | None = None,
    performer: str | None = None,
) -> Plan:
    """Refuse an SOP with lint errors, validate, check prerequisites, select branches and
    bind every line on the path. Every run goes through here (engine.execution.runner), so an SOP
    with lint errors never runs: ``LintRefused``, one line per error. ``performer``
    (agent|person) performs the unbound lines of a file that names no performer."""
    # lazy: the language package pulls in the markdown parser; importing the planner for
    # its Binding/Plan types (sop coverage, the CLI's output) should not
    from engine.language import params as params_module
    from engine.language.lint import refuse_errors

    if isinstance(sop, str):
        from engine.language.catalog import load

        doc: Sop = load(sop)
    else:
        doc = sop
    refuse_errors(doc)
    validated = params_module.validate(doc, params)
    missing = missing_environment(doc)
    if missing:
        names = ", ".join(missing)
        noun = "variable" if len(missing) == 1 else "variables"
        raise UsageError(f"{doc.name}: prerequisite not met: environment {noun} {names} not set")
    if registry is None:  # the packs the command line would load for this SOP
        # lazy, as before: planning with a given registry never imports the loaders
        from engine.binding.packs import api_packs

        registry = api_packs.registry_for(doc.name)
    if performer is not None and performer not in PERFORMERS:
        raise UsageError(f"performer '{performer}' is not one of {', '.join(PERFORMERS)}")
    bindings = _bindings(doc, registry, validated, performer)
    return Plan(sop=doc, params=validated, bindings=bindings, performer=performer)


def _bindings(
    doc: Sop, registry: Registry, params: Mapping[str, Any], performer: str | None
) -> tuple[Binding, ...]:
    """Every line in execution order, bound or with the reason it is off the path.

    They depend only on the SOP's text, the registry's handlers, ``performer`` and which
    branches the parameters select (each branch's reason), so the registry keeps them
    under those until its next registration: planning the same SOP again, as every run
    does, binds nothing again. Plans share them: a Binding is frozen, and its captures
    are only read (a handler gets them as keyword arguments, a copy).
    """
    branches = doc.derived(("branch lines",), lambda: _branch_lines(doc))
    off: dict[tuple[int | None, str | None], str | None] = {
        (step, label): _branch_off(doc, step, label, params) for step, label in branches
    }
    key = ("bindings", doc.name, doc.path, doc.content_hash, performer, tuple(off.values()))
    return registry.remember(
        key,
        lambda: tuple(
            bind_line(action, doc, registry, off.get((action.step, action.branch)), performer)
            for action in doc.all_actions()
        ),
    )


__all__ = ["Binding", "Plan", "bind_line", "missing_environment", "plan"]
