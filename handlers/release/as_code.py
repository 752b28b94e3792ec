"""The scripted performer bound as code: ``sop run release-runbook --handlers
handlers.release.as_code`` runs the whole runbook unattended (tests, demo).

Not one of the pack's modules: normally the agent lines stay the agent's, and a run
pauses for them. Bound here, the same functions the performer answers with run as code,
which proves the SOP, its checks and the performer fit together end to end.
"""

from __future__ import annotations

from pathlib import Path

from engine import RunContext, action
from handlers.release.performer import PERFORMS, Perform


def _bind(text: str, perform: Perform) -> None:
    @action(text, sop="release-runbook")
    def performed(ctx: RunContext) -> None:
        note = perform(Path(str(ctx.params["repo"])), str(ctx.params["version"]))
        ctx.output.setdefault("notes", []).append(note)


for _text, _perform in PERFORMS.items():
    _bind(_text, _perform)
