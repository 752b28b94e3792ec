"""Integer and number coercion of parameter strings: ASCII digits only (issue 9, defect 10).

``int()`` and ``float()`` accept any Unicode decimal digit (Arabic-Indic, full-width, ...),
underscores ("1_000") and, for floats, "inf"/"nan"; a parameter string does not.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.errors import ParameterError
from engine.language.params import coerce
from tests.support.sops import make_sop, param

SOP = make_sop(param("amount", "integer", True, 1), param("ratio", "number", False, 3))

#: Decimal digits other than 0-9 (Arabic-Indic, Devanagari, full-width, mathematical, ...).
non_ascii_digit = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())
ascii_digits = st.text(alphabet="0123456789", max_size=6)


@settings(max_examples=500, deadline=None)
@given(
    sign=st.sampled_from(["", "+", "-"]),
    head=ascii_digits,
    digit=non_ascii_digit,
    tail=st.text(alphabet=st.sampled_from(list("0123456789")) | non_ascii_digit, max_size=6),
    name=st.sampled_from(["amount", "ratio"]),
)
@example(sign="", head="", digit="\u0661", tail="\u0662\u0663", name="amount")  # Arabic-Indic 123
@example(sign="", head="", digit="\uff11", tail="\uff12\uff13", name="amount")  # full-width 123
@example(sign="", head="12", digit="\u0969", tail="", name="ratio")  # 12३
def test_any_non_ascii_digit_is_refused(
    sign: str, head: str, digit: str, tail: str, name: str
) -> None:
    value = sign + head + digit + tail
    with pytest.raises(ParameterError) as info:
        coerce(SOP, {name: value})
    (problem,) = info.value.problems
    assert problem.startswith(f"{name}: {value!r} is not a")
    assert "\n" not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(number=st.integers(), plus=st.booleans(), pad=st.sampled_from(["", " ", "\t"]))
def test_ascii_integers_round_trip(number: int, plus: bool, pad: str) -> None:
    text = ("+" if plus and number >= 0 else "") + str(number)
    assert coerce(SOP, {"amount": pad + text + pad}) == {"amount": number}
    assert coerce(SOP, {"ratio": text}) == {"ratio": number}


@settings(max_examples=300, deadline=None)
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_ascii_numbers_round_trip(number: float) -> None:
    (value,) = coerce(SOP, {"ratio": repr(number)}).values()
    assert value == number


@pytest.mark.parametrize(
    "text", ["1_000", "0x10", "1e3", "2500.0", "inf", "nan", "", " ", "+", "12 34", "2500\u00a0"]
)
def test_other_integer_spellings_are_refused(text: str) -> None:
    with pytest.raises(ParameterError, match=r"^invalid parameters: amount: "):
        coerce(SOP, {"amount": text})


@pytest.mark.parametrize("text", ["inf", "-Infinity", "nan", "1_0.5", "\uff11.5", "0x1p3"])
def test_other_number_spellings_are_refused(text: str) -> None:
    with pytest.raises(ParameterError, match=r"^invalid parameters: ratio: "):
        coerce(SOP, {"ratio": text})
