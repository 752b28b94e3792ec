"""Agent SOP fidelity: where a keyword stands, how many there are, and where it is only
mentioned (issue 11, "Reading Agent SOPs faithfully")."""

from __future__ import annotations

import pytest

from engine.language.lint import lint
from engine.language.parser import parse
from engine.model import Level, Sop


def constraints(*items: str) -> Sop:
    body = "\n".join(f"- {item}" for item in items)
    return parse(f"# T\n\n## Steps\n\n### 1. Do\n\n**Constraints:**\n{body}\n")


def test_keyword_mid_sentence_sets_level_and_keeps_the_whole_sentence() -> None:
    sop = constraints("Each step in the plan MUST be written as a clear objective")
    (action,) = sop.steps[0].actions
    assert action.level is Level.MUST and action.keyword == "MUST"
    assert action.text == "Each step in the plan MUST be written as a clear objective"


def test_leading_keyword_is_still_cut() -> None:
    (action,) = constraints("You MUST NOT push the branch").steps[0].actions
    assert (action.level, action.text) == (Level.MUST_NOT, "push the branch")


@pytest.mark.parametrize(
    ("item", "level", "keyword"),
    [
        ("You MAY suggest options, but MUST wait for the user", Level.MUST, "MUST"),
        ("You SHOULD ask, and MUST NOT guess", Level.MUST_NOT, "MUST NOT"),
        ("You MAY skip it, but SHOULD say so", Level.SHOULD, "SHOULD"),
        ("You MUST read it and MUST NOT edit it", Level.MUST, "MUST"),
    ],
)
def test_several_keywords_take_the_strongest(item: str, level: Level, keyword: str) -> None:
    (action,) = constraints(item).steps[0].actions
    assert (action.level, action.keyword, action.text) == (level, keyword, item)


def test_lint_notes_a_mix_of_strengths_only() -> None:
    sop = constraints("You MAY suggest options, but MUST wait for the user")
    (note,) = [d for d in lint(sop) if d.code == "SOP024"]
    assert note.line == 8 and note.severity.value == "info"
    assert "MAY and MUST" in note.message and "(MUST)" in note.message
    same = constraints("You MUST read it and MUST NOT edit it")
    assert not [d for d in lint(same) if d.code == "SOP024"]


@pytest.mark.parametrize(
    "item",
    [
        "Write `MUST` in upper case for obligations",
        'Say "You MUST stop" to the user',
        "Keep the marker <!-- ACTION REQUIRED: fill in --> in the file",
        "Quote \u201cMAY\u201d when it is optional",
    ],
)
def test_keywords_only_mentioned_set_no_level(item: str) -> None:
    sop = constraints(item)
    assert sop.steps[0].actions == ()
    assert any(d.code == "SOP020" for d in sop.diagnostics)


def test_a_mention_beside_a_real_keyword() -> None:
    (action,) = constraints('You SHOULD print "MUST NOT retry" when blocked').steps[0].actions
    assert (action.level, action.text) == (Level.SHOULD, 'print "MUST NOT retry" when blocked')
    (coded,) = constraints("Use `MAY` only if you MUST").steps[0].actions
    assert (coded.level, coded.text) == (Level.MUST, "Use MAY only if you MUST")


@pytest.mark.parametrize(
    ("item", "keyword", "text"),
    [
        ("(MUST) keep the receipt", "MUST", "keep the receipt"),
        ("MUST: keep the receipt", "MUST", "keep the receipt"),
        ("You  MUST\tkeep the receipt", "MUST", "keep the receipt"),
        ("The receipt is (REQUIRED).", "REQUIRED", "The receipt is (REQUIRED)."),
        (
            "It is NOT RECOMMENDED to print it",
            "NOT RECOMMENDED",
            "It is NOT RECOMMENDED to print it",
        ),
        ("SHALL, NOT print it", "SHALL NOT", "print it"),
    ],
)
def test_a_keyword_is_a_whole_word_with_its_punctuation(item: str, keyword: str, text: str) -> None:
    (action,) = constraints(item).steps[0].actions
    assert (action.keyword, action.text) == (keyword, text)


@pytest.mark.parametrize(
    "item", ["MUSTER the team", "The XMUST flag", "Use MAYBE later", "a/MUST b"]
)
def test_keyword_letters_inside_a_word_are_no_keyword(item: str) -> None:
    sop = constraints(item)
    assert sop.steps[0].actions == ()
    assert any(d.code == "SOP020" for d in sop.diagnostics)
