"""Normalization: reformatting a line keeps its key; changing a word or a number changes it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.binding.normalize import clean, normalize

BASE = "verify customer_id exists in Stripe"


@pytest.mark.parametrize(
    "variant",
    [
        "verify customer_id exists in Stripe",
        "- MUST verify customer_id exists in Stripe",
        "* MUST verify customer_id exists in Stripe",
        "1. MUST verify customer_id exists in Stripe",
        "**MUST** verify customer_id exists in Stripe",
        "MUST verify `customer_id` exists in **Stripe**",
        "MUST  verify   customer_id\texists in Stripe  ",
        "MUST verify customer_id exists in Stripe.",
        "MUST verify customer_id exists in Stripe;",
        "You MUST verify customer_id exists in Stripe",
        "you MUST verify _customer_id_ exists in *Stripe*",
        "MUST: verify customer_id exists in Stripe",
        "SHALL verify customer_id exists in [Stripe](https://stripe.com)",
        "MUST VERIFY CUSTOMER_ID EXISTS IN STRIPE",
        "MUST verify customer\\_id exists in Stripe",
    ],
)
def test_reformatting_keeps_the_key(variant: str) -> None:
    assert normalize(variant) == normalize(BASE) == BASE.lower()


@pytest.mark.parametrize(
    "changed",
    [
        "verify customer exists in Stripe",  # a word removed
        "verify customerid exists in Stripe",  # identifier changed
        "verify customer_id exists in Oracle",
        "set appropriate timeout (60 seconds)",
    ],
)
def test_changing_words_or_numbers_changes_the_key(changed: str) -> None:
    assert normalize(changed) not in (normalize(BASE), "set appropriate timeout (30 seconds)")


def test_case_is_kept_by_clean_but_folded_by_normalize() -> None:
    assert clean("MUST refund `pi_XYZ789` now.") == "refund pi_XYZ789 now"
    assert normalize("MUST refund `pi_XYZ789` now.") == "refund pi_xyz789 now"


def test_lower_case_keyword_is_text_not_a_keyword() -> None:
    # RFC 8174: only upper-case keywords are keywords; "must" stays part of the text.
    assert normalize("must verify it") == "must verify it"
    assert normalize("MUST NOT log card numbers") == "log card numbers"
    assert normalize("You SHOULD NOT retry") == "retry"


def test_symbols_and_inner_punctuation_survive() -> None:
    assert clean("SHOULD require confirmation for refunds > $100.") == (
        "require confirmation for refunds > $100"
    )
    assert clean("set appropriate timeout (30 seconds)") == "set appropriate timeout (30 seconds)"
    assert clean("retry up to 3 times, then stop") == "retry up to 3 times, then stop"


_texty = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 _*`.,;:!?-$>(){}\t")), min_size=0, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(_texty)
def test_normalize_is_idempotent_and_single_line(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert "\n" not in once and "  " not in once and once == once.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # list markers (the whole run) go first, then one keyword right after them
        ("- [x] You SHOULD: do it", "do it"),
        ("- 2. + MUST NOT log it", "log it"),
        ("1) MUST", ""),
        ("MUST - x", "- x"),  # a marker after the keyword is text
        ("MUST 1. do", "1. do"),
        ("12345678901. MUST x", "12345678901. MUST x"),  # ten digits: not a list marker
        ("- MUSTER the team", "MUSTER the team"),  # a keyword is a whole word
        ("-MUST x", "-MUST x"),
        ("+ you must x", "you must x"),
        ("\u201cquoted\u201d MUST x", '"quoted" MUST x'),
        # what may follow a keyword: [ :,]* go with it; NOT may make it two words
        ("MUST :x", "x"),
        ("- MUST, then x", "then x"),
        ("MUST NOTIFY the team", "NOTIFY the team"),
        ("- MUST NOT log it", "log it"),
        ("MUST", ""),
        ("- - MUST x", "x"),
    ],
)
def test_leading_markers_then_keyword(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("verify customer_id exists", "verify customer_id exists"),  # inside a word: kept
        ("verify _customer_ exists", "verify customer exists"),  # emphasis: removed
        ("verify customer__id exists", "verify customerid exists"),  # a double one too
        ("verify customer_ id", "verify customer id"),
        ("_x_", "x"),
        ("a_b_c and d_e", "a_b_c and d_e"),
        ("_\u00e9t\u00e9_ pi_\ue000", "\u00e9t\u00e9 pi_\ue000"),  # a placeholder is wordish
        ("see [the docs](http://x) \\_now\\_", "see the docs now"),
        ("- [x] MUST: \u201cdo\u201d it", '"do" it'),
        ("\u0663. MUST x", "\u0663. MUST x"),  # a list marker's digits are ASCII
        ("1. \u0663. x", "x"),
    ],
)
def test_markup_is_removed_where_the_rules_say(text: str, expected: str) -> None:
    assert clean(text) == expected
