"""Redaction's triggers, computed by string operations, find exactly what their regexes find.

``has_13_digits`` and ``cvv_hint`` decide whether a text is scanned for card numbers
and CVV phrases at all; a trigger that missed a match would let a card number through.
Each is checked against the regex it stands for, on hand-picked edges and on random
texts over the characters that matter.
"""

from __future__ import annotations

import random
import re

from engine.execution.redact import cvv_hint, has_13_digits, redact_text

CARD_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12}")
CVV_WORD = re.compile(r"(?i)cv|cid|csc|code|verif")


def test_13_digits_with_single_separators_and_nothing_less() -> None:
    found = [
        "4242424242424",
        "4242 4242 4242 4242",
        "4242-4242-4242-4",
        "ref00424242424242424242",
        "1 2 3 4 5 6 7 8 9 0 1 2 3",
        "x-1-2-3-4-5-6-7-8-9-0-1-2-3",
        "4242--42424242424242",
        "é4242 4242 4242 4242é",
    ]
    missed = ["424242424242", "4242--4242-4242", "1 2 3 4 5 6 7 8 9 0 1 2", "4242  424242424", ""]
    # full-width digits are not [0-9]; a timestamp has no 13 digits in a row
    missed += ["\uff14\uff12" * 7, "2026-12-03T06:52:36.039568+00:00"]
    for text in found + missed:
        assert has_13_digits(text) is bool(CARD_RUN.search(text)), text
        assert has_13_digits(text) is (text in found), text


def test_cvv_words_in_any_case_and_unicode_folding() -> None:
    for text in [
        "CVV",
        "card Verification value",
        "the CODE",
        "Cid",
        "c\u017fc",
        "ciD",
        "xyz",
        "",
        "çv",
    ]:
        assert cvv_hint(text) is bool(CVV_WORD.search(text)), text
    assert cvv_hint("c\u017fc 123") and redact_text("c\u017fc 123") == "c\u017fc ***"


def test_random_texts_agree_with_the_regexes() -> None:
    rng = random.Random(10)
    alphabet = "0123456789 --\n:abcdeirsvCDEIRSV\u017fé\ud800"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert has_13_digits(text) is bool(CARD_RUN.search(text)), repr(text)
        assert cvv_hint(text) is bool(CVV_WORD.search(text)), repr(text)
