"""An SOP's step graph for the page: SVG through Graphviz ``dot`` when it is installed,
else the DOT and Mermaid text (``sop graph`` prints the same).

The hook for run colouring (``sop graph NAME --run RUN_ID``, slice ops-graph) is
``dot_source``: give it the run and return the coloured DOT; the page renders whatever
it returns.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass

from engine.execution.result import RunResult
from engine.language.graph import to_dot, to_mermaid
from engine.model import Sop

#: dot gets this long to draw one graph (a pathological SOP must not hang the page)
DOT_SECONDS = 10.0


@dataclass(frozen=True)
class Drawn:
    """What the page shows: an SVG (as a data: URL for an <img>: no script in it can run)
    or, without Graphviz, the text sources."""

    svg_url: str | None
    dot: str
    mermaid: str


def dot_source(sop: Sop, run: RunResult | None = None) -> str:
    """The DOT the page draws. HOOK: colouring by ``run``'s statuses belongs here."""
    del run  # the plain graph until run colouring lands
    return to_dot(sop)


def draw(sop: Sop, run: RunResult | None = None) -> Drawn:
    dot = dot_source(sop, run)
    return Drawn(_svg_url(dot), dot, to_mermaid(sop))


def _svg_url(dot: str) -> str | None:
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=DOT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(done.stdout).decode("ascii")
