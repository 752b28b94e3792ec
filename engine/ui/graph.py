"""An SOP's step graph for the page: SVG through Graphviz ``dot`` (the same drawing as
``sop graph --format svg``, coloured by a run's statuses on a run's page), else the DOT
and Mermaid text when Graphviz is not installed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import UsageError
from engine.language.graph import layout, to_dot, to_mermaid
from engine.model import Sop


@dataclass(frozen=True)
class Drawn:
    """What the page shows: an SVG (as a data: URL for an <img>: no script in it can run)
    or, without Graphviz, the text sources."""

    svg_url: str | None
    dot: str
    mermaid: str


def draw(sop: Sop, statuses: Mapping[str, str] | None = None) -> Drawn:
    """``sop``'s graph; ``statuses`` (action id -> status in a run) colour its lines."""
    dot = to_dot(sop, statuses)
    try:
        svg = layout(dot, "svg")
    except UsageError:  # no Graphviz, or it refused: the page shows the sources
        svg_url = None
    else:
        svg_url = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return Drawn(svg_url, dot, to_mermaid(sop, statuses))
