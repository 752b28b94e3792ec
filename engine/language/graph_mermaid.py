"""The step graph as Mermaid ``flowchart TD`` source (what GitHub renders).

Without statuses a step is one box listing its lines. With a run's statuses each step
becomes a subgraph of one node per line, so every line is coloured by its own status
(``classDef``); a legend names the colours.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from engine.language.graph_structure import STATUSES, label_lines, line_text, to_json
from engine.model import Sop

#: status -> (fill, stroke): the same colours in Mermaid and DOT
COLOURS = {
    "passed": ("#d1f2d9", "#2f855a"),
    "failed": ("#fbd5d5", "#c53030"),
    "skipped": ("#e2e8f0", "#718096"),
    "pending": ("#fef3c7", "#b7791f"),
    "unknown": ("#e9d8fd", "#6b46c1"),
    "not reached": ("#ffffff", "#a0aec0"),
}

_SHAPES = {
    "start": ('(["', '"])'),
    "end": ('(["', '"])'),
    "failure": ('(["', '"])'),
    "guards": ('[/"', '"/]'),
    "step": ('["', '"]'),
    "substep": ('["', '"]'),
    "branch": ('{{"', '"}}'),
    "child": ('[["', '"]]'),
    "recovery": ('["', '"]'),
}

_REPLACEMENTS = {
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


def text(value: str) -> str:
    """Safe inside a quoted Mermaid label: quotes, brackets and markup as entity codes."""
    return "".join(_REPLACEMENTS.get(ch, ch) for ch in value)


def class_name(status: str) -> str:
    return status.replace(" ", "_")


def to_mermaid(sop: Sop, statuses: Mapping[str, str] | None = None) -> str:
    """``flowchart TD`` source: ids s1, s3b1; quoted, escaped labels; coloured by status."""
    graph = to_json(sop, statuses)
    out = ["flowchart TD"]
    classes: list[tuple[str, str]] = []
    for node in graph["nodes"]:
        if statuses is not None and node.get("lines"):
            out.extend(_subgraph(node, classes))
            continue
        left, right = _SHAPES[node["kind"]]
        label = "<br/>".join(text(line) for line in label_lines(node))
        out.append(f"    {node['id']}{left}{label}{right}")
        if node["kind"] == "child":
            out.append(f'    click {node["id"]} href "{text(node["sop"])}.sop.md"')
        if "status" in node:
            classes.append((node["id"], class_name(node["status"])))
    for edge in graph["edges"]:
        arrow = {"error": "-.->", "child": "==>"}.get(edge["kind"], "-->")
        if edge["condition"]:
            condition = text(edge["condition"])
            out.append(f'    {edge["source"]} {arrow}|"{condition}"| {edge["target"]}')
        else:
            out.append(f"    {edge['source']} {arrow} {edge['target']}")
    out.extend(_styles(graph, classes, statuses is not None))
    return "\n".join(out) + "\n"


def _subgraph(node: dict[str, Any], classes: list[tuple[str, str]]) -> list[str]:
    """A step (or branch, or the guards) whose lines are nodes of their own."""
    out = [f'    subgraph {node["id"]}["{text(node["label"])}"]', "        direction TB"]
    ids = []
    for index, item in enumerate(node["lines"], start=1):
        lid = f"{node['id']}_{index}"
        ids.append(lid)
        label = f"{text(line_text(item))}<br/>#91;{text(item['status'])}#93;"
        out.append(f'        {lid}["{label}"]')
        classes.append((lid, class_name(item["status"])))
    out.extend(f"        {a} ~~~ {b}" for a, b in itertools.pairwise(ids))
    out.append("    end")
    return out


def _styles(graph: dict[str, Any], classes: list[tuple[str, str]], run: bool) -> list[str]:
    out = ["    classDef failure fill:#fff5f5,stroke:#c53030,color:#742a2a"]
    out.append("    classDef child fill:#ebf8ff,stroke:#2b6cb0")
    out.append("    classDef recovery fill:#fffaf0,stroke:#dd6b20")
    for node in graph["nodes"]:
        if node["kind"] in ("failure", "child", "recovery") and "status" not in node:
            out.append(f"    class {node['id']} {node['kind']}")
    if not run:
        return out
    for status in STATUSES:
        fill, stroke = COLOURS[status]
        dash = ",stroke-dasharray:4 3" if status == "not reached" else ""
        out.append(f"    classDef {class_name(status)} fill:{fill},stroke:{stroke}{dash}")
    out.extend(f"    class {lid} {name}" for lid, name in classes)
    out.extend(['    subgraph legend["Status"]', "        direction LR"])
    out.extend(f'        legend_{class_name(s)}["{s}"]' for s in STATUSES)
    out.append("    end")
    out.extend(f"    class legend_{class_name(s)} {class_name(s)}" for s in STATUSES)
    return out
