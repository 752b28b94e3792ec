"""Redaction: no card number, CVV or Stripe secret survives, wherever it hides."""

from __future__ import annotations

import logging
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.redact import luhn_ok, redact, redact_text

VISA = "4242424242424242"
AMEX = "378282246310005"  # 15 digits
SHORT = "4222222222222"  # 13 digits


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_ok(prefix + check):
            return prefix + check
    raise AssertionError("unreachable")


def test_luhn_known_numbers() -> None:
    assert luhn_ok(VISA) and luhn_ok(AMEX) and luhn_ok(SHORT)
    assert not luhn_ok("4242424242424241")


def test_card_masked_keeping_at_most_first6_last4() -> None:
    assert redact_text(VISA) == "424242******4242"
    assert redact_text("card 4242 4242 4242 4242 ok") == "card 424242******4242 ok"
    assert redact_text("4242-4242-4242-4242") == "424242******4242"
    assert redact_text(f"id{AMEX}x") == "id378282*****0005x"


def test_card_inside_longer_digit_run_is_masked() -> None:
    out = redact_text(f"ref99{VISA}77")
    assert VISA not in out and "*" in out


def test_non_card_numbers_stay() -> None:
    # 13+ digit runs are kept only when no 13-19 digit window of them passes Luhn
    for text in ("amount 2500 usd", "n 1000000000000", "order 123456789012", "2026-01-20"):
        assert redact_text(text) == text
    assert redact({"amount": 15000, "currency": "usd"}) == {"amount": 15000, "currency": "usd"}


def test_cvv_keys_dropped_and_phrases_masked() -> None:
    data = {"cvc": "123", "CVV2": "999", "card_code": "1", "security_code": "12", "n": 1}
    assert redact(data) == {"n": 1}
    assert redact_text("CVV 123") == "CVV ***"
    assert redact_text("the cvc: 9876 was sent") == "the cvc: *** was sent"
    assert redact_text("Security code = 321") == "Security code = ***"
    assert redact_text("cvv 12345") == "cvv 12345"  # five digits: not a CVV


def test_secrets_masked() -> None:
    out = redact_text("key sk_live_51HxYzAbC and rk_test_abc123 and sk_test_Q")
    assert "51HxYzAbC" not in out and "abc123" not in out
    assert out == "key sk_live_*** and rk_test_*** and sk_test_***"
    assert redact({"api_key": "whatever", "password": "x"}) == {"api_key": "***", "password": "***"}


def test_nested_structures_and_integers() -> None:
    data = {"a": [{"pan": VISA}, ("x", f"n {SHORT}")], "num": int(VISA)}
    out = redact(data)
    assert out == {
        "a": [{"pan": "424242******4242"}, ["x", "n 422222***2222"]],
        "num": "424242******4242",
    }
    assert data["num"] == int(VISA)  # a copy: the input is untouched


def test_redacting_logger_filter() -> None:
    from engine.context import _RedactFilter

    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "paid with %s cvv %s", (VISA, 123), None
    )
    assert _RedactFilter().filter(record)
    assert record.getMessage() == "paid with 424242******4242 cvv ***"


_cards = st.integers(min_value=12, max_value=18).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(_luhn_complete)
)
_noise = st.one_of(
    st.text(alphabet=st.sampled_from(list("abcxyz _-:/.,#=()\n\t0123456789")), max_size=30),
    st.text(max_size=30),  # any unicode, including non-ASCII digits and spaces
)


def _formatted(card: str, style: int) -> str:
    if style == 1:
        return " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    if style == 2:
        return "-".join(card[i : i + 4] for i in range(0, len(card), 4))
    return card


@settings(max_examples=400, deadline=None)
@given(card=_cards, before=_noise, after=_noise, style=st.integers(0, 2))
def test_no_luhn_number_survives(card: str, before: str, after: str, style: int) -> None:
    text = before + _formatted(card, style) + after
    out = redact_text(text)
    assert card not in out
    assert card not in re.sub(r"[ -]", "", out)
    assert card not in str(redact({"note": text, "n": [text]}))
