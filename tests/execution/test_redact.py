"""Redaction: no card number, CVV or Stripe secret survives, wherever it hides."""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.execution.context import RedactFilter, idempotency_key
from engine.execution.redact import luhn_ok, redact, redact_text
from engine.execution.runner import new_run_id

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
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "paid with %s cvv %s", (VISA, 123), None
    )
    assert RedactFilter().filter(record)
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


# ------------------------------------------------------------ issue 9, defect 1: UUIDs


#: uuid4s whose digits, joined across the dashes, hold a Luhn-valid run (masked before).
LUHN_UUIDS = ["230d977e-e225-4159-8720-771f8ca81811", "04b8157d-03ed-4920-8975-8340401d68fb"]


@settings(max_examples=500, deadline=None)
@given(value=st.uuids(version=4).map(str), upper=st.booleans())
@example(value=LUHN_UUIDS[0], upper=False)
@example(value=LUHN_UUIDS[1], upper=True)
def test_uuid_shaped_values_are_never_altered(value: str, upper: bool) -> None:
    if upper:
        value = value.upper()
    assert redact_text(value) == value
    derived = f"{value}:payment_intent"  # how the payments pack derives its Stripe keys
    assert redact_text(derived) == derived
    assert redact({"idempotency_key": value, "keys": [derived]}) == {
        "idempotency_key": value,
        "keys": [derived],
    }
    assert redact_text(f"key {value} sent") == f"key {value} sent"


@settings(max_examples=200, deadline=None)
@given(run_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), action=st.text())
def test_engine_idempotency_keys_are_never_altered(run_id: str, action: str) -> None:
    from engine.execution.context import idempotency_key

    key = idempotency_key(run_id, action, "child:1")
    assert redact_text(key) == key


def test_a_card_next_to_a_uuid_is_still_masked() -> None:
    uid = LUHN_UUIDS[0]
    out = redact_text(f"{uid} paid with {VISA}")
    assert out == f"{uid} paid with 424242******4242"
    # a card cannot hide half in a UUID: digits across a space or dash are one run
    out = redact_text("4242424242 42424242-4242-4242-4242-000000000000")
    assert "4242424242 42424242" not in out and "*" in out


_GROUPINGS = [(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 5), (4, 4, 4, 1)]


@settings(max_examples=400, deadline=None)
@given(
    card=_cards,
    grouping=st.sampled_from(_GROUPINGS),
    sep=st.sampled_from([" ", "-"]),
    before=st.sampled_from(["", "card ", "pan: ", '{"number": "', "x"]),
    after=st.sampled_from(["", " exp 12/30", '"}', "."]),
)
def test_grouped_luhn_numbers_are_masked(
    card: str, grouping: tuple[int, ...], sep: str, before: str, after: str
) -> None:
    groups, rest = [], card
    for size in grouping:
        if rest:
            groups.append(rest[:size])
            rest = rest[size:]
    if rest:
        groups.append(rest)
    out = redact_text(before + sep.join(groups) + after)
    assert card not in re.sub(r"[ -]", "", out)
    assert out.startswith(before) and out.endswith(after)


# ------------------------------------------------------------ issue 9, defect 7: CVCs

CVC_SYNTAXES = [
    '{{"cvc": "{}", "number": "4242424242424242"}}',
    '{{"cvc":{}}}',
    "{{'cvv': '{}'}}",
    'description={{"card": {{"cvc": "{}"}}}}',
    "cvc={}",
    "cvv: {}",
    "CVV2={}",
    "cvc2 {}",
    "CID: {}",
    "csc {}",
    "card[cvc]={}",
    "card%5Bcvc%5D={}",
    "cardCvc: {}",
    "card_cvv => {}",
    "cvv_number={}",
    "security code {}",
    "Security-Code: {}",
    "CVV is {}",
    "the cvc was {}",
    "card verification value {}",
    "card verification code: {}",
    "cvv no. {}",
    "cvc ({})",
]


@pytest.mark.parametrize("syntax", CVC_SYNTAXES)
def test_cvc_masked_in_every_syntax(syntax: str) -> None:
    text = syntax.format("987")
    out = redact_text(text)
    assert "987" not in out, out
    assert out == redact_text(text.replace("987", "***"))
    for nested in (json.dumps(text), json.dumps(json.dumps(text))):  # JSON inside a string
        assert "987" not in redact_text(nested), nested
    assert "987" not in json.dumps(redact({"description": text, "n": [{"note": text}]}))


@settings(max_examples=300, deadline=None)
@given(
    syntax=st.sampled_from(CVC_SYNTAXES),
    cvc=st.from_regex(r"\A[0-9]{3,4}\Z"),
    before=st.text(alphabet=st.sampled_from(list("abc xyz.,;\n")), max_size=12),
    after=st.text(alphabet=st.sampled_from(list("abc xyz.,;\n")), max_size=12),
    upper=st.booleans(),
)
def test_no_cvc_survives(syntax: str, cvc: str, before: str, after: str, upper: bool) -> None:
    text = f"{before} {syntax.format(cvc)} {after}"  # words stay words: "aCID" is not "CID"
    if upper:
        text = text.upper()
    out = redact_text(text)
    assert cvc not in re.sub("4242424242424242|424242\\*+4242", "", out), out


def test_cvc_keys_dropped_at_any_depth() -> None:
    data = {
        "a": [
            {
                "card": {
                    "number": VISA,
                    "cvc": "987",
                    "CVV2": 987,
                    "card[cvc]": "987",
                    "cardCvc": "987",
                    "securityCode": "987",
                    "cvv_number": "987",
                    "card_verification_value": "987",
                    "CID": "987",
                    "cvc_check": "pass",  # Stripe's check result, not a code: kept
                }
            }
        ],
        "text": json.dumps({"card": {"cvc": "987"}}),
    }
    out = redact(data)
    assert "987" not in json.dumps(out)
    assert out["a"][0]["card"] == {"number": "424242******4242", "cvc_check": "pass"}
    assert json.loads(out["text"]) == {"card": {"cvc": "***"}}


@pytest.mark.parametrize(
    "text",
    [
        "order 123 for 4567 units",
        "amount 2500 usd",
        "error code 402",
        "acid 123",
        "CVV not provided, amount 2500",
        '{"cvc_check": "pass", "amount": 987}',
        "version 1.2.3",
        "cvv 12345",
    ],
)
def test_cvc_rules_leave_ordinary_numbers_alone(text: str) -> None:
    assert redact_text(text) == text


def test_large_numbers_of_any_sign_or_type_are_masked() -> None:
    out = redact({"neg": -int(VISA), "f": float(VISA), int(VISA): "as a key"})
    assert VISA not in json.dumps(out)
    assert redact({"n": 2500, "x": 1.5}) == {"n": 2500, "x": 1.5}


def test_outbox_paths_of_engine_made_ids_are_never_altered() -> None:
    """A run's state keeps its outbox paths (``RUN-TEMPLATE-KEY.eml``); when redaction
    altered one (a timestamp's digits joined a run id's across a dash), the run could no
    longer resume exactly. Run ids are drawn clean, keys are UUID-shaped."""
    for _ in range(3000):
        run_id = new_run_id()
        path = f".sop/outbox/{run_id}-confirmation-{idempotency_key(run_id, 'a', 'mail')}.eml"
        assert redact_text(path) == path


@pytest.mark.parametrize(
    "text",
    ["fee4242424242424242", "4242424242424242" + "a" * 16, "a" * 32 + " 4242424242424242"],
)
def test_a_card_glued_to_hex_is_still_masked(text: str) -> None:
    assert "4242424242424242" not in redact_text(text)
