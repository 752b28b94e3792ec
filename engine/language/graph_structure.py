"""The step graph: steps in order, branch fan-out and rejoin, guards before step 1, and
every way out of the happy path the SOP states.

One structure (:func:`to_json`) feeds every drawing, so Mermaid, DOT and SVG always
show the same nodes and edges. Shape (``schemas/graph.schema.json``)::

    {"sop", "version", "nodes": [{"id", "kind", "label", "line", "lines": [...]}],
     "edges": [{"source", "target", "condition", "kind"}]}

Node ids: start, guards, s1..sN (by position), s3b1 (branch 1 of step 3), s4s1 (sub-step 1
of step 4, ``#### 4.1 ...``), s1x1 (the
failure end of step 1's first Error Handling rule), c1 (a child SOP), recovery (the
Error Recovery table), done ("end" is a Mermaid keyword). Node kinds: start, guards,
step, branch, failure, child, recovery, end. Edge kinds: next (the walk), error (an
Error Handling rule: to its failure end, labelled with its condition), retry (a
self-loop: the rule says retry), child (the path runs another SOP).

A step with ``**For X**:`` branches fans out to one branch node per branch (edge
condition ``param = value``) which rejoin at the next step; an enum value no branch
handles goes to a child SOP when a Related SOP is named after it (``subscription`` ->
``subscription-management``, as the payment SOP's subscription path runs it), else
takes an ``otherwise`` edge straight to the next step. A line that asks for a person's
confirmation is a gate (``"gate": true``). With ``statuses`` (action id -> status in a
run), every line carries its ``status``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from engine.language import recovery
from engine.language.params import declared
from engine.model import Action, ActionKind, RecoveryRule, Sop, Step

#: what a line can be in a run (ActionStatus values, and "not reached")
STATUSES = ("passed", "failed", "skipped", "pending", "unknown", "not reached")

_GATE = re.compile(
    r"\b(require|requires|request|ask|asks|get|obtain|await)\b.{0,40}\b(confirmation|approval)\b"
    r"|\bconfirm(ed)? (by|with) (a |the )?(person|human|user|operator|supervisor)\b",
    re.IGNORECASE,
)


def is_gate(action: Action) -> bool:
    """A line that asks a person to confirm: the run may pause there."""
    return bool(_GATE.search(action.text))


def _line_item(action: Action, statuses: Mapping[str, str] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": action.id,
        "kind": action.kind.value,
        "level": action.level.value,
        "text": action.text,
        "line": action.line,
    }
    if is_gate(action):
        item["gate"] = True
    if statuses is not None:
        item["status"] = statuses.get(action.id, "not reached")
    return item


def _step_lines(
    step: Step,
    branch: str | None,
    statuses: Mapping[str, str] | None,
    substep: str | None = None,
) -> list[dict[str, Any]]:
    """The step's own lines (``substep`` None), one branch's, or one sub-step's."""
    lines = [
        a
        for a in (*step.actions, *step.checks)
        if a.branch == branch and (branch is not None or a.substep == substep)
    ]
    return [_line_item(a, statuses) for a in sorted(lines, key=lambda a: a.line)]


def _edge(source: str, target: str, condition: str | None, kind: str = "next") -> dict[str, Any]:
    return {"source": source, "target": target, "condition": condition, "kind": kind}


def _error_exits(sid: str, step: Step) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each Error Handling rule: a failure end carrying the SOP's message, or a retry loop."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for index, rule in enumerate(step.error_rules, start=1):
        said = recovery.interpret(rule.response)
        if said["retry"]:
            edges.append(_edge(sid, sid, f"{rule.condition}: {_retry_text(said)}", "retry"))
            continue
        fid = f"{sid}x{index}"
        nodes.append(
            {
                "id": fid,
                "kind": "failure",
                "label": rule.message or rule.response,
                "line": rule.line,
                "step": step.number,
            }
        )
        edges.append(_edge(sid, fid, rule.condition, "error"))
    return nodes, edges


def _retry_text(said: recovery.RecoveryFields) -> str:
    count = said["max_retries"]
    text = f"retry up to {count} times" if count is not None else "retry"
    return text + (", backoff" if said["backoff"] else "")


def policy_text(rule: RecoveryRule) -> str:
    """What the engine does for one Error Recovery row, in the vocabulary's words."""
    parts: list[str] = []
    if rule.retry:
        count = rule.max_retries
        parts.append(f"retry up to {count} times" if count is not None else "retry")
        if rule.backoff:
            parts.append("backoff")
    elif rule.retry is False:
        parts.append("do not retry")
    if rule.block:
        parts.append("block transaction")
    if rule.notify:
        parts.append("notify user")
    if rule.escalate:
        parts.append("escalate" + (f" to {rule.escalate_to}" if rule.escalate_to else ""))
    return ", ".join(parts) or "no effect (lint: unknown phrase)"


def _children(sop: Sop, unhandled: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``(param, value)`` -> the Related SOP named after that value (its file name)."""
    out: dict[tuple[str, str], str] = {}
    for param, value in unhandled:
        for link in sop.related:
            name = link.target.rsplit("/", 1)[-1].removesuffix(".md").removesuffix(".sop")
            if name == value or name.startswith(f"{value}-"):
                out[(param, value)] = name
                break
    return out


def to_json(sop: Sop, statuses: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The graph as a JSON-ready dict (see the module docstring for its shape)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    spine: list[dict[str, Any]] = [
        {"id": "start", "kind": "start", "label": sop.title or sop.name, "line": 1}
    ]
    if sop.guards:
        spine.append(
            {
                "id": "guards",
                "kind": "guards",
                "label": "Security Considerations (SOP-wide, before step 1)",
                "line": min(g.line for g in sop.guards),
                "lines": [_line_item(g, statuses) for g in sop.guards],
            }
        )
    fan_out: dict[str, list[dict[str, Any]]] = {}
    exits: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for position, step in enumerate(sop.steps, start=1):
        sid = f"s{position}"  # by position: unique even when the numbering is wrong
        node: dict[str, Any] = {
            "id": sid,
            "kind": "step",
            "label": f"{step.number}. {step.title}",
            "line": step.line,
            "step": step.number,
            "lines": _step_lines(step, None, statuses),
        }
        if step.error_rules:
            node["errors"] = [
                {"condition": r.condition, "response": r.response, "line": r.line}
                for r in step.error_rules
            ]
        spine.append(node)
        spine.extend(
            {
                "id": f"{sid}s{index}",
                "kind": "substep",
                "label": f"{sub.number} {sub.title}",
                "line": sub.line,
                "step": step.number,
                "substep": sub.number,
                "lines": _step_lines(step, None, statuses, sub.number),
            }
            for index, sub in enumerate(step.substeps, start=1)
        )
        exits[sid] = _error_exits(sid, step)
        fan_out[sid] = [
            {
                "id": f"{sid}b{index}",
                "kind": "branch",
                "label": f"For {branch.label}",
                "line": branch.line,
                "step": step.number,
                "param": branch.param,
                "value": branch.value,
                "lines": _step_lines(step, branch.label, statuses),
            }
            for index, branch in enumerate(step.branches, start=1)
        ]
    spine.append({"id": "done", "kind": "end", "label": "Success", "line": _end_line(sop)})

    child_ids: dict[str, str] = {}
    for current, following in itertools.pairwise(spine):
        nodes.append(current)
        branches = fan_out.get(current["id"], [])
        for branch in branches:
            nodes.append(branch)
            condition = (
                f"{branch['param']} = {branch['value']}" if branch["param"] else branch["label"]
            )
            edges.append(_edge(current["id"], branch["id"], condition))
            edges.append(_edge(branch["id"], following["id"], None))
        if branches:
            _unbranched(sop, current, following, branches, nodes, edges, child_ids, statuses)
        else:
            edges.append(_edge(current["id"], following["id"], None))
        exit_nodes, exit_edges = exits.get(current["id"], ([], []))
        nodes.extend(exit_nodes)
        edges.extend(exit_edges)
    nodes.append(spine[-1])
    if sop.recovery:
        nodes.append(_recovery_node(sop))
    return {"sop": sop.name, "version": sop.version, "nodes": nodes, "edges": edges}


def _unbranched(
    sop: Sop,
    current: dict[str, Any],
    following: dict[str, Any],
    branches: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    child_ids: dict[str, str],
    statuses: Mapping[str, str] | None,
) -> None:
    """The values no branch takes: to a child SOP named after them, else ``otherwise``."""
    handled: dict[str, set[str]] = {}
    for branch in branches:
        if branch["param"]:
            handled.setdefault(branch["param"], set()).add(str(branch["value"]))
    unhandled = _unhandled(sop, handled)
    children = _children(sop, unhandled)
    for (param, value), name in children.items():
        cid = child_ids.get(name)
        if cid is None:
            cid = child_ids[name] = f"c{len(child_ids) + 1}"
            nodes.append(
                {
                    "id": cid,
                    "kind": "child",
                    "label": f"runs {name}",
                    "line": current["line"],
                    "sop": name,
                }
            )
            if statuses is not None:
                nodes[-1]["status"] = statuses.get(f"child:{name}", "not reached")
            edges.append(_edge(cid, following["id"], None))
        edges.append(_edge(current["id"], cid, f"{param} = {value}", "child"))
    rest = [f"{p} = {v}" for p, v in unhandled if (p, v) not in children]
    if rest or not handled:
        condition = "otherwise" + (f" ({', '.join(rest)})" if rest else "")
        edges.append(_edge(current["id"], following["id"], condition))


def _recovery_node(sop: Sop) -> dict[str, Any]:
    return {
        "id": "recovery",
        "kind": "recovery",
        "label": "Error Recovery (any step)",
        "line": min(r.line for r in sop.recovery),
        "rules": [
            {"error_type": r.error_type, "policy": policy_text(r), "line": r.line}
            for r in sop.recovery
        ],
    }


def _unhandled(sop: Sop, handled: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(param, value)`` for each enum value of a branched-on parameter no branch takes."""
    properties = declared(sop)
    out: list[tuple[str, str]] = []
    for name, values in handled.items():
        prop = properties.get(name, {})
        enum = prop.get("enum") or (["true", "false"] if prop.get("type") == "boolean" else [])
        out.extend((name, str(v)) for v in enum if str(v).lower() not in values)
    return out


def _end_line(sop: Sop) -> int:
    for section in sop.sections:
        if section.title.strip().lower() == "success criteria":
            return section.line
    return sop.steps[-1].line if sop.steps else 1


def label_lines(node: dict[str, Any]) -> list[str]:
    """A node's text, one row each: its label, then its SOP lines (or recovery rows)."""
    lines = [node["label"]]
    for item in node.get("lines", []):
        lines.append(line_text(item))
    for rule in node.get("rules", []):
        lines.append(f"{rule['error_type']}: {rule['policy']}")
    return lines


def line_text(item: dict[str, Any]) -> str:
    """One SOP line as drawn: ``MUST verify ...``, ``CHECK ...``, a gate marked as one."""
    prefix = "CHECK" if item["kind"] == ActionKind.CHECK.value else item["level"]
    gate = "GATE (confirmation) " if item.get("gate") else ""
    return f"{gate}{prefix} {item['text']}"
