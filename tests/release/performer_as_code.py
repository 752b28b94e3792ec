"""The scripted performer bound as code, for tests that run the whole runbook today.

Until guided runs hand the agent lines to a performer, binding them to the same
functions proves the SOP, its checks and the performer fit together end to end.
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
