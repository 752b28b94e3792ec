"""The step graph as Graphviz ``digraph`` source.

Without statuses a node's label lists its lines, left-aligned. With a run's statuses a
node is an HTML-like table, one row per line filled with its status colour and
naming the status (readable without colour too), and a legend names the colours.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from engine.language.graph_mermaid import COLOURS
from engine.language.graph_structure import STATUSES, label_lines, line_text, to_json
from engine.model import Sop

_SHAPES = {
    "start": "oval",
    "end": "oval",
    "failure": "oval",
    "guards": "note",
    "step": "box",
    "substep": "box",
    "branch": "hexagon",
    "child": "box3d",
    "recovery": "note",
}
_STYLE = {
    "failure": ', style=filled, fillcolor="#fff5f5", color="#c53030"',
    "child": ', style=filled, fillcolor="#ebf8ff", color="#2b6cb0"',
    "recovery": ', style=filled, fillcolor="#fffaf0", color="#dd6b20"',
}
_EDGE = {
    "error": ' style=dashed, color="#c53030"',
    "retry": ' color="#dd6b20"',
    "child": ' penwidth=2, color="#2b6cb0"',
}


def text(value: str) -> str:
    """Safe inside a quoted DOT string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")


def _html(value: str) -> str:
    return escape(value.replace("\n", " ").replace("\r", " "), quote=True)


def to_dot(sop: Sop, statuses: Mapping[str, str] | None = None) -> str:
    """Graphviz ``digraph`` source; labels left-aligned, one SOP line per row."""
    graph = to_json(sop, statuses)
    out = [
        f'digraph "{text(sop.name)}" {{',
        "    rankdir=TB;",
        '    node [fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in graph["nodes"]:
        out.append(_node(node, statuses is not None))
    for edge in graph["edges"]:
        attrs = [f'label="{text(edge["condition"])}"'] if edge["condition"] else []
        if edge["kind"] in _EDGE:
            attrs.append(_EDGE[edge["kind"]].strip())
        joined = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"    {edge['source']} -> {edge['target']}{joined};")
    if statuses is not None:
        out.append(_legend())
    out.append("}")
    return "\n".join(out) + "\n"


def _node(node: dict[str, Any], run: bool) -> str:
    nid, kind = node["id"], node["kind"]
    url = f', URL="{text(node["sop"])}.sop.md"' if kind == "child" else ""
    if run and node.get("lines"):
        rows = [f'<tr><td colspan="2" align="left"><b>{_html(node["label"])}</b></td></tr>']
        for item in node["lines"]:
            fill, _ = COLOURS[item["status"]]
            rows.append(
                f'<tr><td align="left" bgcolor="{fill}">{_html(line_text(item))}</td>'
                f'<td bgcolor="{fill}"><i>{_html(item["status"])}</i></td></tr>'
            )
        table = "".join(rows)
        return (
            f'    {nid} [shape=plain, label=<<table border="1" cellborder="0"'
            f' cellspacing="0" cellpadding="4">{table}</table>>];'
        )
    label = "".join(text(line) + "\\l" for line in label_lines(node))
    style = _STYLE.get(kind, "")
    if "status" in node:
        fill, stroke = COLOURS[node["status"]]
        label += text(f"[{node['status']}]") + "\\l"
        style = f', style=filled, fillcolor="{fill}", color="{stroke}"'
    return f'    {nid} [shape={_SHAPES[kind]}, label="{label}"{style}{url}];'


def _legend() -> str:
    cells = "".join(f'<td bgcolor="{COLOURS[s][0]}">{_html(s)}</td>' for s in STATUSES)
    return (
        '    legend [shape=plain, label=<<table border="0" cellborder="1" cellspacing="0"'
        f' cellpadding="4"><tr><td><b>status</b></td>{cells}</tr></table>>];'
    )
