"""The step graph: steps in order, branch fan-out and rejoin, guards before step 1.

One structure (:func:`to_json`) feeds every drawing, so Mermaid and DOT always
show the same nodes and edges. Shape (``schemas/graph.schema.json``)::

    {"sop", "version", "nodes": [{"id", "kind", "label", "line", "lines": [...]}],
     "edges": [{"source", "target", "condition"}]}

Node ids: start, guards, s1..sN (by position), s3b1 (branch 1 of step 3), s4s1 (sub-step 1
of step 4, ``#### 4.1 ...``), done ("end" is a Mermaid keyword). Node kinds: start, guards
(SOP-wide box, runs before step 1), step, substep (after its step, in order), branch, end.
A step with ``**For X**:`` branches fans out to one branch node per branch (edge
condition ``param = value``) which rejoin at the next step; enum values no branch
handles take an ``otherwise`` edge straight to the next step.
"""

from __future__ import annotations

import itertools
from typing import Any

from engine.language.params import declared
from engine.model import Action, ActionKind, Sop, Step


def _line_item(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "level": action.level.value,
        "text": action.text,
        "line": action.line,
    }


def _step_lines(step: Step, branch: str | None, substep: str | None = None) -> list[dict[str, Any]]:
    lines = [
        a
        for a in (*step.actions, *step.checks)
        if a.branch == branch and (branch is not None or a.substep == substep)
    ]
    return [_line_item(a) for a in sorted(lines, key=lambda a: a.line)]


def to_json(sop: Sop) -> dict[str, Any]:
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
                "lines": [_line_item(g) for g in sop.guards],
            }
        )
    fan_out: dict[str, list[dict[str, Any]]] = {}
    for position, step in enumerate(sop.steps, start=1):
        sid = f"s{position}"  # by position: unique even when the numbering is wrong
        node: dict[str, Any] = {
            "id": sid,
            "kind": "step",
            "label": f"{step.number}. {step.title}",
            "line": step.line,
            "step": step.number,
            "lines": _step_lines(step, None),
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
                "lines": _step_lines(step, None, sub.number),
            }
            for index, sub in enumerate(step.substeps, start=1)
        )
        fan_out[sid] = [
            {
                "id": f"{sid}b{index}",
                "kind": "branch",
                "label": f"For {branch.label}",
                "line": branch.line,
                "step": step.number,
                "param": branch.param,
                "value": branch.value,
                "lines": _step_lines(step, branch.label),
            }
            for index, branch in enumerate(step.branches, start=1)
        ]
    spine.append({"id": "done", "kind": "end", "label": "Success", "line": _end_line(sop)})

    for current, following in itertools.pairwise(spine):
        nodes.append(current)
        branches = fan_out.get(current["id"], [])
        for branch in branches:
            nodes.append(branch)
            condition = (
                f"{branch['param']} = {branch['value']}" if branch["param"] else branch["label"]
            )
            edges.append({"source": current["id"], "target": branch["id"], "condition": condition})
            edges.append({"source": branch["id"], "target": following["id"], "condition": None})
        if not branches:
            edges.append({"source": current["id"], "target": following["id"], "condition": None})
            continue
        handled: dict[str, set[str]] = {}
        for branch in branches:
            if branch["param"]:
                handled.setdefault(branch["param"], set()).add(str(branch["value"]))
        unhandled = _unhandled(sop, handled)
        if unhandled or not handled:
            condition = "otherwise" + (f" ({', '.join(unhandled)})" if unhandled else "")
            edges.append(
                {"source": current["id"], "target": following["id"], "condition": condition}
            )
    nodes.append(spine[-1])
    return {"sop": sop.name, "version": sop.version, "nodes": nodes, "edges": edges}


def _unhandled(sop: Sop, handled: dict[str, set[str]]) -> list[str]:
    """``param = value`` for each enum value of a branched-on parameter that no branch takes."""
    properties = declared(sop)
    out: list[str] = []
    for name, values in handled.items():
        prop = properties.get(name, {})
        enum = prop.get("enum") or (["true", "false"] if prop.get("type") == "boolean" else [])
        out.extend(f"{name} = {v}" for v in enum if str(v).lower() not in values)
    return out


def _end_line(sop: Sop) -> int:
    for section in sop.sections:
        if section.title.strip().lower() == "success criteria":
            return section.line
    return sop.steps[-1].line if sop.steps else 1


# --------------------------------------------------------------------------- drawings


def _mermaid_text(text: str) -> str:
    """Safe inside a quoted Mermaid label: quotes, brackets and markup as entity codes."""
    replacements = {
        "#": "#35;",
        '"': "#quot;",
        "<": "#lt;",
        ">": "#gt;",
        "[": "#91;",
        "]": "#93;",
        "{": "#123;",
        "}": "#125;",
        "(": "#40;",
        ")": "#41;",
        "|": "#124;",
        "`": "#96;",
        "\n": " ",
        "\r": " ",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


def _label_lines(node: dict[str, Any]) -> list[str]:
    lines = [node["label"]]
    for item in node.get("lines", []):
        prefix = "CHECK" if item["kind"] == ActionKind.CHECK.value else item["level"]
        lines.append(f"{prefix} {item['text']}")
    return lines


def to_mermaid(sop: Sop) -> str:
    """``flowchart TD`` source that GitHub renders: ids s1, s3b1; quoted, escaped labels."""
    graph = to_json(sop)
    out = ["flowchart TD"]
    shapes = {
        "start": ('(["', '"])'),
        "end": ('(["', '"])'),
        "guards": ('[/"', '"/]'),
        "step": ('["', '"]'),
        "substep": ('["', '"]'),
        "branch": ('{{"', '"}}'),
    }
    for node in graph["nodes"]:
        left, right = shapes[node["kind"]]
        label = "<br/>".join(_mermaid_text(line) for line in _label_lines(node))
        out.append(f"    {node['id']}{left}{label}{right}")
    for edge in graph["edges"]:
        if edge["condition"]:
            out.append(
                f'    {edge["source"]} -->|"{_mermaid_text(edge["condition"])}"| {edge["target"]}'
            )
        else:
            out.append(f"    {edge['source']} --> {edge['target']}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")


def to_dot(sop: Sop) -> str:
    """Graphviz ``digraph`` source; labels left-aligned, one SOP line per row."""
    graph = to_json(sop)
    shapes = {
        "start": "oval",
        "end": "oval",
        "guards": "note",
        "step": "box",
        "substep": "box",
        "branch": "hexagon",
    }
    out = [
        f'digraph "{_dot_text(sop.name)}" {{',
        "    rankdir=TB;",
        '    node [fontname="Helvetica"];',
    ]
    for node in graph["nodes"]:
        label = "".join(_dot_text(line) + "\\l" for line in _label_lines(node))
        out.append(f'    {node["id"]} [shape={shapes[node["kind"]]}, label="{label}"];')
    for edge in graph["edges"]:
        attrs = f' [label="{_dot_text(edge["condition"])}"]' if edge["condition"] else ""
        out.append(f"    {edge['source']} -> {edge['target']}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"
