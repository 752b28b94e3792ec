"""Every phrase lint calls part of the recovery vocabulary states an effect the engine
applies (retry, no retry, notify, escalate, block); anything else is a lint warning."""

from __future__ import annotations

import pytest

from engine.language.lint import lint
from engine.language.parser import parse
from engine.language.recovery import interpret

VOCABULARY = {
    "Retry": "retry",
    "Retry up to 3 times": "retry",
    "Max 3 retries": "retry",
    "Exponential backoff": "retry",
    "Do not retry": "no retry",
    "Escalate to supervisor": "escalate",
    "Notify user": "notify",
    "Notify on-call": "notify",
    "Block transaction": "block",
}


@pytest.mark.parametrize(("phrase", "effect"), sorted(VOCABULARY.items()))
def test_each_vocabulary_phrase_has_an_effect(phrase: str, effect: str) -> None:
    fields = interpret(phrase)
    assert fields["unknown_phrases"] == ()
    applied = {
        "retry": fields["retry"] is True,
        "no retry": fields["retry"] is False,
        "escalate": fields["escalate"],
        "notify": fields["notify"],
        "block": fields["block"],
    }
    assert [name for name, on in applied.items() if on] == [effect]


def test_whom_is_kept_and_other_phrases_are_lint_warnings() -> None:
    assert interpret("Notify the customer")["notify_to"] == "customer"
    assert interpret("Notify on-call and retry")["notify_to"] == "on-call"
    text = (
        "# R\n\n## Overview\n\nWhy.\n\n## Steps\n\n### 1. Go\n\n**Actions**:\n- MUST go\n\n"
        "## Error Recovery\n\n| Error Type | Recovery Procedure |\n|---|---|\n"
        "| Card declined | Notify user, suggest alternative payment |\n"
    )
    warnings = [d for d in lint(parse(text, path="r.sop.md")) if d.code == "SOP160"]
    assert len(warnings) == 1
    assert "'suggest alternative payment'" in warnings[0].message
    assert "will not be enforced" in warnings[0].message
