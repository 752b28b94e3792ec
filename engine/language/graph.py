"""The step graph, drawn: JSON, Mermaid, DOT, and SVG or PNG through Graphviz.

:func:`render` is the one entry point for every caller (``sop graph``, a web page):
``statuses`` (action id -> status in a run, see :mod:`engine.execution.run_graph`)
colours every line. SVG and PNG are the DOT drawing laid out by Graphviz's ``dot``
binary (Debian's ``graphviz``), so the picture is the same graph the text shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Literal, overload

from engine.errors import UsageError
from engine.language.graph_dot import to_dot
from engine.language.graph_mermaid import to_mermaid
from engine.language.graph_structure import STATUSES, is_gate, to_json
from engine.model import Sop

__all__ = ["FORMATS", "STATUSES", "is_gate", "render", "to_dot", "to_json", "to_mermaid"]

FORMATS = ("mermaid", "dot", "json", "svg", "png")
DOT_TIMEOUT_SECONDS = 60.0


@overload
def render(
    sop: Sop,
    fmt: Literal["mermaid", "dot", "json", "svg"],
    statuses: Mapping[str, str] | None = None,
) -> str: ...
@overload
def render(sop: Sop, fmt: Literal["png"], statuses: Mapping[str, str] | None = None) -> bytes: ...
@overload
def render(sop: Sop, fmt: str, statuses: Mapping[str, str] | None = None) -> str | bytes: ...
def render(sop: Sop, fmt: str, statuses: Mapping[str, str] | None = None) -> str | bytes:
    """The graph of ``sop`` in ``fmt`` (text; PNG as bytes), coloured by ``statuses``."""
    if fmt == "mermaid":
        return to_mermaid(sop, statuses)
    if fmt == "dot":
        return to_dot(sop, statuses)
    if fmt == "json":
        return json.dumps(to_json(sop, statuses), indent=2) + "\n"
    if fmt in ("svg", "png"):
        drawn = layout(to_dot(sop, statuses), fmt)
        return drawn.decode("utf-8") if fmt == "svg" else drawn
    raise UsageError(f"unknown graph format {fmt!r} (one of: {', '.join(FORMATS)})")


def layout(dot_source: str, fmt: str) -> bytes:
    """``dot -T<fmt>``: UsageError in one line when Graphviz is missing or refuses."""
    binary = shutil.which("dot")
    if binary is None:
        raise UsageError(
            f"--format {fmt} needs Graphviz's `dot` on PATH (Debian: apt-get install -y"
            " graphviz); --format dot prints the source instead"
        )
    try:
        proc = subprocess.run(
            [binary, f"-T{fmt}"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"Graphviz `dot` could not draw the graph: {exc}") from exc
    if proc.returncode != 0:
        first = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0]
        raise UsageError(f"Graphviz `dot` failed (exit {proc.returncode}): {first}")
    return proc.stdout
