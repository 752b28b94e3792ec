"""Handlers for the CLI tests (imported by `sop --handlers`): each appends to GUIDED_EFFECTS."""

from __future__ import annotations

import os
from pathlib import Path

from engine.binding.registry import action
from engine.execution.context import RunContext


def _effect(what: str) -> None:
    with Path(os.environ["GUIDED_EFFECTS"]).open("a", encoding="utf-8") as out:
        out.write(what + "\n")


@action("record the start", sop="release-runbook")
def start(ctx: RunContext) -> None:
    _effect("start")


@action("record the tag", sop="release-runbook")
def tag(ctx: RunContext) -> None:
    _effect("tag")


@action("record the end", sop="release-runbook")
def end(ctx: RunContext) -> None:
    _effect("end")
